package main

// The demo's broker moves to a free port when its default is taken (here a
// port this test holds, standing in for 127.0.0.1:1883), keeps an address
// given with --mqtt-listen, and resolves port 0 so that the printed
// mosquitto_sub line is usable.
