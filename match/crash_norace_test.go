//go:build !race

package match

const crashRounds = 20
