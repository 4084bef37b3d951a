//go:build race

package match

// Under the race detector every SQLite call in the child is instrumented and a
// round takes seconds: fewer rounds keep the package test under a minute. The
// plain run does the full 20.
const crashRounds = 5
