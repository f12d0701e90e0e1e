//go:build race

package integration_test

// raceEnabled says the tests run under -race: the example server is then
// built with it too.
const raceEnabled = true
