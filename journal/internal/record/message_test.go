package record

import (
	"bytes"
	"errors"
	"testing"
	"time"
)

func TestDecodeMessageRejectsCorruption(t *testing.T) {
	good := EncodeMessage(&Message{Payload: []byte("0420 reversal"), Attempts: 2, Enqueued: time.Unix(100, 0)})
	var m Message
	if err := DecodeMessage(good, &m); err != nil || m.Attempts != 2 || string(m.Payload) != "0420 reversal" {
		t.Fatalf("good message: %+v %v", m, err)
	}
	for i := range good {
		b := bytes.Clone(good)
		b[i] ^= 0x08
		if err := DecodeMessage(b, &m); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("byte %d changed: %v, want ErrCorrupt", i, err)
		}
	}
	for n := 0; n < len(good); n++ {
		if err := DecodeMessage(good[:n], &m); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("cut to %d: %v, want ErrCorrupt", n, err)
		}
	}
}

func FuzzDecodeQueueMessage(f *testing.F) {
	f.Add(EncodeMessage(&Message{Payload: []byte("0420"), Attempts: 1, Enqueued: time.Unix(1, 0), LastAttempt: time.Unix(2, 0)}))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		var m Message
		if err := DecodeMessage(b, &m); err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		if again := EncodeMessage(&m); !bytes.Equal(again, b) {
			t.Fatalf("re-encoding differs\n in %x\nout %x", b, again)
		}
	})
}
