//go:build !unix

package main

import "os"

// terminalColumns: elsewhere tables fit $COLUMNS only.
func terminalColumns(*os.File) int { return 0 }
