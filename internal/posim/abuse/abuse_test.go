package abuse

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/cardswitch/cardswitch/internal/posim/posimtest"
	"github.com/cardswitch/cardswitch/spec"
	"github.com/cardswitch/cardswitch/spec/posclient"
)

func TestFramesAreMalformed(t *testing.T) {
	s := &signed{consume: spec.AppendPOSFrame(nil, posclient.DefaultTPDU, posclient.DefaultHeader,
		[]byte{0x02, 0x00, 0, 0, 0, 0, 0, 0, 0, 1, 'M', 'A', 'C', 'M', 'A', 'C', '!', '!'})}
	rng := rand.New(rand.NewPCG(1, 2))
	for k := kind(0); k < numKinds; k++ {
		for i := 0; i < 50; i++ {
			f := build(k, rng, s)
			if len(f) == 0 {
				t.Fatalf("%s: empty frame", kindNames[k])
			}
			switch k {
			case kindWrongMAC:
				if len(f) != len(s.consume) || string(f) == string(s.consume) {
					t.Fatalf("wrong MAC frame equals the original")
				}
			case kindReplay:
				if string(f) != string(s.consume) {
					t.Fatalf("replay differs from the original")
				}
			case kindBadBitmap, kindOversize:
				// Well framed, so the switch reads it whole and must answer
				// or close, never wait.
				if n := int(f[0])<<8 | int(f[1]); n != len(f)-2 {
					t.Fatalf("%s: length prefix %d for %d bytes", kindNames[k], n, len(f)-2)
				}
			}
		}
	}
}

func TestSwitchSurvivesAbuse(t *testing.T) {
	_, pos, _ := posimtest.StartSwitch(t, nil)
	res, err := Run(context.Background(), Options{Addr: pos, Frames: 300, Idle: 20, Hold: 200 * time.Millisecond, Senders: 4, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	var sent uint64
	for _, n := range res.Sent {
		sent += n
	}
	if sent != 300 || res.IdleOpened != 20 || res.Answered == 0 {
		t.Fatalf("abuse result %s", res)
	}
	// A well-behaved terminal is still served.
	c, err := posclient.Dial(pos, posclient.Options{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	resp, err := posclient.NewTerminal(c, "10000001", "898310000000001", nil).Client.Exchange(&spec.POSMessage{
		MTI: "0820", TerminalID: "10000001", MerchantID: "898310000000001",
		Reserved60: spec.Field60{Type: "00", Batch: "000000", NetworkCode: "301"},
	}, nil)
	if err != nil || resp.ResponseCode != spec.RCApproved {
		t.Fatalf("echo test after abuse: %v %+v", err, resp)
	}
}
