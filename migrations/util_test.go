package migrations_test

import (
	"crypto/rand"
	"encoding/hex"
	"testing"
)

func randomSuffix(t *testing.T) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
