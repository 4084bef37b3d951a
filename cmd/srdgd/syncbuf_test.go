package main

import (
	"github.com/srdgd/srdgd/internal/testutil"
)

// syncBuffer is a log sink safe for a goroutine writing while the test reads.
type syncBuffer = testutil.SyncBuffer
