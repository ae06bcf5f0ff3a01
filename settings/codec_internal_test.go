package settings

import (
	"encoding/base64"
	"testing"
)

func TestMaxEncodedLen(t *testing.T) {
	if want := base64.RawURLEncoding.EncodedLen(MaxPayloadLen); maxEncodedLen != want {
		t.Errorf("maxEncodedLen: got %d; want %d", maxEncodedLen, want)
	}
	if want := 100 * settingLen; MaxPayloadLen != want {
		t.Errorf("MaxPayloadLen: got %d; want %d (100 settings, x/net's limit per frame)", MaxPayloadLen, want)
	}
}
