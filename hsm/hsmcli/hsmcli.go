// Package hsmcli is `switchctl hsm`, the offline key and PIN calculator of
// docs/hsm.md#switchctl-hsm-reference: every command reads hex arguments, prints uppercase hex (one
// result per line), and exits 2 with a one-line error on bad input. It
// uses the algorithm packages directly and never touches a key store.
package hsmcli

import (
	"crypto/cipher"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/cardswitch/cardswitch/hsm/blockcipher"
	"github.com/cardswitch/cardswitch/hsm/dukpt"
	"github.com/cardswitch/cardswitch/hsm/mac"
	"github.com/cardswitch/cardswitch/hsm/pinblock"
	"github.com/cardswitch/cardswitch/hsm/pinverify"
)

// maxHexArg bounds every hex argument (data for MAC/encrypt included).
const maxHexArg = 64 << 10

// usageError marks bad input: exit status 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func bad(format string, a ...any) error { return usageError{fmt.Sprintf(format, a...)} }

const usageText = `usage: switchctl hsm COMMAND [FLAGS]
commands:
  kcv --alg tdes|aes|sm4 [--method zeros|cmac] --key K
  encrypt|decrypt --alg des|tdes|aes|sm4 --mode ecb|cbc [--iv IV] --key K --data D
  mac --alg A [--pad 1|2|3] --key K --data D
      A: iso9797-1-alg1 iso9797-1-alg3 cup-ecb aes-cmac tdes-cmac
         sm4-cbcmac sm4-retail sm4-cmac sm4-cup-ecb
  pinblock encode --format 0|1|3|4 --pin P [--pan N] [--fill F] [--key K]
  pinblock decode --format 0|1|3|4 --block B [--pan N] [--key K]
  pin translate --block B --pan N --to-key K2 (--from-key K1 | --bdk BDK --ksn KSN)
                [--from-format F] [--to-format F]
  dukpt --bdk BDK --ksn KSN [--working-key tdes2|aes128|aes256]
  pvv --pvk K --pan N --pin P --pvki I
  ibm3624-offset --pvk K --dectab T --validation-data V --pin P
  wrap|unwrap --kek K --key K2 [--alg des|tdes|aes|sm4]
`

// Run executes `switchctl hsm` with args (after "hsm") and returns the exit
// status: 0 success, 2 bad input or usage, 1 an unexpected failure.
func Run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprint(stderr, usageText)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	lines, err := dispatch(args)
	if err != nil {
		msg := strings.ReplaceAll(err.Error(), "\n", " ")
		fmt.Fprintf(stderr, "switchctl hsm %s: %s\n", args[0], msg)
		var ue usageError
		if errors.As(err, &ue) {
			return 2
		}
		return 1
	}
	for _, l := range lines {
		fmt.Fprintln(stdout, l)
	}
	return 0
}

func dispatch(args []string) ([]string, error) {
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "kcv":
		return cmdKCV(rest)
	case "encrypt", "decrypt":
		return cmdCrypt(cmd == "encrypt", rest)
	case "mac":
		return cmdMAC(rest)
	case "pinblock":
		if len(rest) == 0 || (rest[0] != "encode" && rest[0] != "decode") {
			return nil, bad("want 'pinblock encode' or 'pinblock decode'")
		}
		if rest[0] == "encode" {
			return cmdPINEncode(rest[1:])
		}
		return cmdPINDecode(rest[1:])
	case "pin":
		if len(rest) == 0 || rest[0] != "translate" {
			return nil, bad("want 'pin translate'")
		}
		return cmdTranslate(rest[1:])
	case "dukpt":
		return cmdDUKPT(rest)
	case "pvv":
		return cmdPVV(rest)
	case "ibm3624-offset":
		return cmdIBM(rest)
	case "wrap", "unwrap":
		return cmdWrap(cmd == "wrap", rest)
	}
	return nil, bad("unknown command %q (see 'switchctl hsm help')", cmd)
}

// flags wraps a FlagSet that reports errors as usage errors, silently.
type flags struct {
	fs *flag.FlagSet
}

func newFlags(name string) *flags {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return &flags{fs: fs}
}

func (f *flags) parse(args []string) error {
	if err := f.fs.Parse(args); err != nil {
		return bad("%v", err)
	}
	if f.fs.NArg() > 0 {
		return bad("unexpected argument %q", f.fs.Arg(0))
	}
	return nil
}

func (f *flags) set(name string) bool {
	found := false
	f.fs.Visit(func(fl *flag.Flag) {
		if fl.Name == name {
			found = true
		}
	})
	return found
}

func parseHex(name, s string) ([]byte, error) {
	if s == "" {
		return nil, bad("--%s is required", name)
	}
	if len(s) > 2*maxHexArg {
		return nil, bad("--%s longer than %d bytes", name, maxHexArg)
	}
	if len(s)%2 != 0 {
		return nil, bad("--%s: malformed hex (odd number of digits)", name)
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		return nil, bad("--%s: malformed hex", name)
	}
	return b, nil
}

func up(b []byte) string { return strings.ToUpper(hex.EncodeToString(b)) }

func newCipher(alg blockcipher.Algorithm, key []byte, flagName string) (cipher.Block, error) {
	b, err := blockcipher.New(alg, key)
	if err != nil {
		return nil, bad("--%s: %s key of %d bytes: wrong key length", flagName, alg, len(key))
	}
	return b, nil
}

func parseAlg(s string, allowed ...string) (blockcipher.Algorithm, error) {
	for _, a := range allowed {
		if s == a {
			return blockcipher.ParseAlgorithm(s)
		}
	}
	return 0, bad("--alg %q: want one of %s", s, strings.Join(allowed, ", "))
}

func cmdKCV(args []string) ([]string, error) {
	f := newFlags("kcv")
	alg := f.fs.String("alg", "", "")
	method := f.fs.String("method", "zeros", "")
	key := f.fs.String("key", "", "")
	if err := f.parse(args); err != nil {
		return nil, err
	}
	a, err := parseAlg(*alg, "des", "tdes", "aes", "sm4")
	if err != nil {
		return nil, err
	}
	k, err := parseHex("key", *key)
	if err != nil {
		return nil, err
	}
	b, err := newCipher(a, k, "key")
	if err != nil {
		return nil, err
	}
	switch *method {
	case "zeros":
		out := make([]byte, b.BlockSize())
		b.Encrypt(out, out)
		return []string{up(out)}, nil
	case "cmac":
		if a != blockcipher.AES && a != blockcipher.SM4 {
			return nil, bad("--method cmac is for aes and sm4 keys")
		}
		out, err := mac.CMAC(b, make([]byte, b.BlockSize()))
		if err != nil {
			return nil, err
		}
		return []string{up(out)}, nil
	}
	return nil, bad("--method %q: want zeros or cmac", *method)
}

func cmdCrypt(encrypt bool, args []string) ([]string, error) {
	f := newFlags("crypt")
	alg := f.fs.String("alg", "", "")
	mode := f.fs.String("mode", "", "")
	ivs := f.fs.String("iv", "", "")
	key := f.fs.String("key", "", "")
	data := f.fs.String("data", "", "")
	if err := f.parse(args); err != nil {
		return nil, err
	}
	a, err := parseAlg(*alg, "des", "tdes", "aes", "sm4")
	if err != nil {
		return nil, err
	}
	k, err := parseHex("key", *key)
	if err != nil {
		return nil, err
	}
	d, err := parseHex("data", *data)
	if err != nil {
		return nil, err
	}
	b, err := newCipher(a, k, "key")
	if err != nil {
		return nil, err
	}
	if len(d)%b.BlockSize() != 0 {
		return nil, bad("--data of %d bytes is not a whole number of %d-byte blocks", len(d), b.BlockSize())
	}
	var out []byte
	switch *mode {
	case "ecb":
		if f.set("iv") {
			return nil, bad("--iv is for cbc mode")
		}
		if encrypt {
			out, err = blockcipher.EncryptECB(b, d)
		} else {
			out, err = blockcipher.DecryptECB(b, d)
		}
	case "cbc":
		var iv []byte
		if f.set("iv") {
			if iv, err = parseHex("iv", *ivs); err != nil {
				return nil, err
			}
			if len(iv) != b.BlockSize() {
				return nil, bad("--iv of %d bytes, want %d", len(iv), b.BlockSize())
			}
		}
		if encrypt {
			out, err = blockcipher.EncryptCBC(b, iv, d)
		} else {
			out, err = blockcipher.DecryptCBC(b, iv, d)
		}
	default:
		return nil, bad("--mode %q: want ecb or cbc", *mode)
	}
	if err != nil {
		return nil, bad("%v", err)
	}
	return []string{up(out)}, nil
}

func cmdMAC(args []string) ([]string, error) {
	f := newFlags("mac")
	alg := f.fs.String("alg", "", "")
	pad := f.fs.Int("pad", 1, "")
	key := f.fs.String("key", "", "")
	data := f.fs.String("data", "", "")
	if err := f.parse(args); err != nil {
		return nil, err
	}
	k, err := parseHex("key", *key)
	if err != nil {
		return nil, err
	}
	var d []byte
	if *data != "" {
		if d, err = parseHex("data", *data); err != nil {
			return nil, err
		}
	} else if !f.set("data") {
		return nil, bad("--data is required")
	}
	p := mac.Padding(*pad)
	if p < mac.Pad1 || p > mac.Pad3 {
		return nil, bad("--pad %d: want 1, 2 or 3", *pad)
	}
	compute, ok := macAlgorithms[*alg]
	if !ok {
		return nil, bad("--alg %q: want iso9797-1-alg1, iso9797-1-alg3, cup-ecb, aes-cmac, tdes-cmac, sm4-cbcmac, sm4-retail, sm4-cmac or sm4-cup-ecb", *alg)
	}
	if !compute.padded && f.set("pad") {
		return nil, bad("--pad does not apply to %s", *alg)
	}
	out, err := compute.mac(*alg, k, d, p)
	if err != nil {
		return nil, err
	}
	return []string{up(out)}, nil
}

// macAlgorithm computes one --alg of the mac command; padded says whether
// it takes --pad.
type macAlgorithm struct {
	padded bool
	mac    func(alg string, key, data []byte, pad mac.Padding) ([]byte, error)
}

// macAlgorithms are the mac command's algorithms by --alg name.
var macAlgorithms = map[string]macAlgorithm{
	"iso9797-1-alg1": {true, macCBCDES},
	"iso9797-1-alg3": {true, macRetail},
	"sm4-retail":     {true, macRetail},
	"cup-ecb":        {false, macCUPECB},
	"sm4-cup-ecb":    {false, macCUPECB},
	"aes-cmac":       {false, macCMAC},
	"tdes-cmac":      {false, macCMAC},
	"sm4-cmac":       {false, macCMAC},
	"sm4-cbcmac":     {true, macCBCSM4},
}

// macCBCDES is ISO 9797-1 algorithm 1 with DES or TDES by key length.
func macCBCDES(_ string, k, d []byte, p mac.Padding) ([]byte, error) {
	b, err := desFamily(k)
	if err != nil {
		return nil, err
	}
	return mac.CBCMAC(b, d, p)
}

// macCBCSM4 is ISO 9797-1 algorithm 1 with SM4.
func macCBCSM4(_ string, k, d []byte, p mac.Padding) ([]byte, error) {
	b, err := newCipher(blockcipher.SM4, k, "key")
	if err != nil {
		return nil, err
	}
	return mac.CBCMAC(b, d, p)
}

// macRetail is ISO 9797-1 algorithm 3 (the retail MAC) with two DES keys,
// or with two SM4 keys for sm4-retail.
func macRetail(alg string, k, d []byte, p mac.Padding) ([]byte, error) {
	a, half := blockcipher.DES, 8
	if alg == "sm4-retail" {
		a, half = blockcipher.SM4, 16
	}
	if len(k) != 2*half {
		return nil, bad("--key: %s needs a %d-byte key (two %s keys), got %d: wrong key length", alg, 2*half, a, len(k))
	}
	k1, _ := newCipher(a, k[:half], "key")
	k2, _ := newCipher(a, k[half:], "key")
	return mac.RetailMAC(k1, k2, d, p)
}

// macCUPECB is the UnionPay POS "ECB" MAC (docs/pos-dialect.md#mac-field-64)
// with a DES-family key, or an SM4 key for sm4-cup-ecb.
func macCUPECB(alg string, k, d []byte, _ mac.Padding) ([]byte, error) {
	var (
		b   cipher.Block
		err error
	)
	if alg == "sm4-cup-ecb" {
		b, err = newCipher(blockcipher.SM4, k, "key")
	} else {
		b, err = desFamily(k)
	}
	if err != nil {
		return nil, err
	}
	m, err := mac.CUPECB(b, d)
	if err != nil {
		return nil, err
	}
	return m[:], nil
}

// macCMAC is CMAC (NIST SP 800-38B) with AES, TDES or SM4.
func macCMAC(alg string, k, d []byte, _ mac.Padding) ([]byte, error) {
	a := map[string]blockcipher.Algorithm{"aes-cmac": blockcipher.AES, "tdes-cmac": blockcipher.TDES, "sm4-cmac": blockcipher.SM4}[alg]
	b, err := newCipher(a, k, "key")
	if err != nil {
		return nil, err
	}
	return mac.CMAC(b, d)
}

func desFamily(k []byte) (cipher.Block, error) {
	switch len(k) {
	case 8:
		return newCipher(blockcipher.DES, k, "key")
	case 16, 24:
		return newCipher(blockcipher.TDES, k, "key")
	}
	return nil, bad("--key of %d bytes: wrong key length (want 8, 16 or 24 for DES/TDES)", len(k))
}

// pinKey builds the cipher for a PIN block format: AES for format 4,
// DES/TDES by length otherwise.
// pinKey parses the hex value of flag --name and sets it up as the PIN
// key of format f: AES for format 4, DES or TDES by length otherwise.
func pinKey(f pinblock.Format, hexKey, name string) (cipher.Block, error) {
	k, err := parseHex(name, hexKey)
	if err != nil {
		return nil, err
	}
	if f == pinblock.Format4 {
		return newCipher(blockcipher.AES, k, name)
	}
	switch len(k) {
	case 8:
		return newCipher(blockcipher.DES, k, name)
	case 16, 24:
		return newCipher(blockcipher.TDES, k, name)
	}
	return nil, bad("--%s of %d bytes: wrong key length (want 8, 16 or 24)", name, len(k))
}

func parseFormat(s string) (pinblock.Format, error) {
	f, err := pinblock.ParseFormat(s)
	if err != nil {
		return 0, bad("--format %q: want 0, 1, 3 or 4", s)
	}
	return f, nil
}

func checkPINPAN(f pinblock.Format, pin, pan string, needPIN bool) error {
	if needPIN {
		if err := pinblock.CheckPIN(pin); err != nil {
			return bad("--pin: %v", err)
		}
	}
	if f.NeedsPAN() || pan != "" {
		if pan == "" {
			return bad("--pan is required for format %d", f)
		}
		if err := pinblock.CheckPAN(pan); err != nil {
			return bad("--pan: %v", err)
		}
	}
	return nil
}

func cmdPINEncode(args []string) ([]string, error) {
	f := newFlags("pinblock encode")
	format := f.fs.String("format", "", "")
	pin := f.fs.String("pin", "", "")
	pan := f.fs.String("pan", "", "")
	fill := f.fs.String("fill", "", "")
	key := f.fs.String("key", "", "")
	if err := f.parse(args); err != nil {
		return nil, err
	}
	fm, err := parseFormat(*format)
	if err != nil {
		return nil, err
	}
	clearF4 := fm == pinblock.Format4 && !f.set("key")
	if clearF4 {
		// The clear format 4 PIN field does not involve the PAN.
		if err := pinblock.CheckPIN(*pin); err != nil {
			return nil, bad("--pin: %v", err)
		}
	} else if err := checkPINPAN(fm, *pin, *pan, true); err != nil {
		return nil, err
	}
	if *fill != "" && (fm == pinblock.Format0) {
		return nil, bad("--fill does not apply to format 0")
	}
	if fm == pinblock.Format4 && *fill != "" && len(*fill) != 16 {
		return nil, bad("--fill for format 4 is 16 hex digits")
	}
	var out []byte
	if !f.set("key") {
		if fm == pinblock.Format4 {
			out, err = pinblock.Format4PINField(*pin, *fill)
		} else {
			out, err = pinblock.Encode(fm, *pin, *pan, *fill)
		}
	} else {
		b, kerr := pinKey(fm, *key, "key")
		if kerr != nil {
			return nil, kerr
		}
		out, err = pinblock.Encrypt(b, fm, *pin, *pan, *fill)
	}
	if err != nil {
		return nil, bad("%v", err)
	}
	return []string{up(out)}, nil
}

func cmdPINDecode(args []string) ([]string, error) {
	f := newFlags("pinblock decode")
	format := f.fs.String("format", "", "")
	block := f.fs.String("block", "", "")
	pan := f.fs.String("pan", "", "")
	key := f.fs.String("key", "", "")
	if err := f.parse(args); err != nil {
		return nil, err
	}
	fm, err := parseFormat(*format)
	if err != nil {
		return nil, err
	}
	blk, err := parseHex("block", *block)
	if err != nil {
		return nil, err
	}
	if len(blk) != fm.BlockSize() {
		return nil, bad("--block of %d bytes, format %d blocks are %d", len(blk), fm, fm.BlockSize())
	}
	keyed := f.set("key")
	// A clear format 4 block is the plain PIN field and needs no PAN.
	if !(fm == pinblock.Format4 && !keyed) {
		if err := checkPINPAN(fm, "", *pan, false); err != nil {
			return nil, err
		}
	}
	var pin string
	switch {
	case !keyed && fm == pinblock.Format4:
		pin, err = pinblock.DecodeFormat4PINField(blk)
	case !keyed:
		pin, err = pinblock.Decode(fm, blk, *pan)
	default:
		b, kerr := pinKey(fm, *key, "key")
		if kerr != nil {
			return nil, kerr
		}
		pin, err = pinblock.Decrypt(b, fm, blk, *pan)
	}
	if err != nil {
		return nil, bad("%v", err)
	}
	return []string{pin}, nil
}

func cmdTranslate(args []string) ([]string, error) {
	f := newFlags("pin translate")
	block := f.fs.String("block", "", "")
	pan := f.fs.String("pan", "", "")
	toKey := f.fs.String("to-key", "", "")
	fromKey := f.fs.String("from-key", "", "")
	bdkS := f.fs.String("bdk", "", "")
	ksnS := f.fs.String("ksn", "", "")
	fromF := f.fs.String("from-format", "0", "")
	toF := f.fs.String("to-format", "0", "")
	if err := f.parse(args); err != nil {
		return nil, err
	}
	from, err := parseFormat(*fromF)
	if err != nil {
		return nil, err
	}
	to, err := parseFormat(*toF)
	if err != nil {
		return nil, err
	}
	if *pan == "" {
		return nil, bad("--pan is required")
	}
	if err := pinblock.CheckPAN(*pan); err != nil {
		return nil, bad("--pan: %v", err)
	}
	if from.NeedsPAN() && to == pinblock.Format1 {
		return nil, bad("translation from format %d to format 1 is refused (it would unbind the PIN from the PAN)", from)
	}
	blk, err := parseHex("block", *block)
	if err != nil {
		return nil, err
	}
	toB, err := pinKey(to, *toKey, "to-key")
	if err != nil {
		return nil, err
	}
	var fromB cipher.Block
	switch {
	case *fromKey != "" && (*bdkS != "" || *ksnS != ""):
		return nil, bad("give --from-key or --bdk/--ksn, not both")
	case *fromKey != "":
		var err error
		if fromB, err = pinKey(from, *fromKey, "from-key"); err != nil {
			return nil, err
		}
	default:
		bdk, err := parseHex("bdk", *bdkS)
		if err != nil {
			return nil, err
		}
		ksn, err := parseHex("ksn", *ksnS)
		if err != nil {
			return nil, err
		}
		var pk []byte
		alg := blockcipher.TDES
		switch len(ksn) {
		case dukpt.TDESKSNLen:
			pk, err = dukpt.TDESPINKey(bdk, ksn)
		case dukpt.AESKSNLen:
			wt := dukpt.TDES2
			if from == pinblock.Format4 {
				wt, alg = dukpt.AES128, blockcipher.AES
			}
			pk, err = dukpt.AESPINKey(bdk, ksn, wt)
		default:
			return nil, bad("--ksn of %d bytes: want 10 (TDES) or 12 (AES)", len(ksn))
		}
		if err != nil {
			return nil, bad("%v", err)
		}
		if fromB, err = newCipher(alg, pk, "bdk"); err != nil {
			return nil, err
		}
	}
	if len(blk) != from.BlockSize() {
		return nil, bad("--block of %d bytes, format %d blocks are %d", len(blk), from, from.BlockSize())
	}
	pin, err := pinblock.Decrypt(fromB, from, blk, *pan)
	if err != nil {
		return nil, bad("%v", err)
	}
	out, err := pinblock.Encrypt(toB, to, pin, *pan, "")
	if err != nil {
		return nil, bad("%v", err)
	}
	return []string{up(out)}, nil
}

// dukptJSON is the output of `switchctl hsm dukpt`, field order fixed.
type dukptJSON struct {
	InitialKey      string `json:"initial_key"`
	TransactionKey  string `json:"transaction_key"`
	PINKey          string `json:"pin_key"`
	MACKey          string `json:"mac_key"`
	MACResponseKey  string `json:"mac_response_key"`
	DataKey         string `json:"data_key"`
	DataResponseKey string `json:"data_response_key"`
}

func cmdDUKPT(args []string) ([]string, error) {
	f := newFlags("dukpt")
	bdkS := f.fs.String("bdk", "", "")
	ksnS := f.fs.String("ksn", "", "")
	wkS := f.fs.String("working-key", "", "")
	if err := f.parse(args); err != nil {
		return nil, err
	}
	bdk, err := parseHex("bdk", *bdkS)
	if err != nil {
		return nil, err
	}
	ksn, err := parseHex("ksn", *ksnS)
	if err != nil {
		return nil, err
	}
	var k *dukpt.Keys
	switch len(ksn) {
	case dukpt.TDESKSNLen:
		if *wkS != "" && *wkS != "tdes2" {
			return nil, bad("--working-key %q: TDES DUKPT derives tdes2 keys only", *wkS)
		}
		if len(bdk) != 16 {
			return nil, bad("--bdk of %d bytes: wrong key length (TDES DUKPT needs 16)", len(bdk))
		}
		k, err = dukpt.TDESKeys(bdk, ksn)
	case dukpt.AESKSNLen:
		wt := map[int]dukpt.KeyType{16: dukpt.AES128, 24: dukpt.AES192, 32: dukpt.AES256}[len(bdk)]
		if wt == 0 {
			return nil, bad("--bdk of %d bytes: wrong key length (AES DUKPT needs 16, 24 or 32)", len(bdk))
		}
		if *wkS != "" {
			if wt, err = dukpt.ParseKeyType(*wkS); err != nil {
				return nil, bad("--working-key: %v", err)
			}
		}
		k, err = dukpt.AESKeys(bdk, ksn, wt)
	default:
		return nil, bad("--ksn of %d bytes: want 10 (TDES, X9.24-1) or 12 (AES, X9.24-3)", len(ksn))
	}
	if err != nil {
		return nil, bad("%v", err)
	}
	defer k.Zero()
	j, err := json.Marshal(dukptJSON{up(k.Initial), up(k.Transaction), up(k.PIN), up(k.MAC), up(k.MACResponse), up(k.Data), up(k.DataResponse)})
	if err != nil {
		return nil, err
	}
	return []string{string(j)}, nil
}

func cmdPVV(args []string) ([]string, error) {
	f := newFlags("pvv")
	pvk := f.fs.String("pvk", "", "")
	pan := f.fs.String("pan", "", "")
	pin := f.fs.String("pin", "", "")
	pvki := f.fs.String("pvki", "", "")
	if err := f.parse(args); err != nil {
		return nil, err
	}
	k, err := parseHex("pvk", *pvk)
	if err != nil {
		return nil, err
	}
	if *pan == "" {
		return nil, bad("--pan is required")
	}
	out, err := pinverify.VisaPVV(k, *pan, *pin, *pvki)
	if err != nil {
		return nil, bad("%v", err)
	}
	return []string{out}, nil
}

func cmdIBM(args []string) ([]string, error) {
	f := newFlags("ibm3624-offset")
	pvk := f.fs.String("pvk", "", "")
	dectab := f.fs.String("dectab", "", "")
	vd := f.fs.String("validation-data", "", "")
	pin := f.fs.String("pin", "", "")
	if err := f.parse(args); err != nil {
		return nil, err
	}
	k, err := parseHex("pvk", *pvk)
	if err != nil {
		return nil, err
	}
	out, err := pinverify.IBM3624Offset(k, *dectab, *vd, *pin)
	if err != nil {
		return nil, bad("%v", err)
	}
	return []string{out}, nil
}

func cmdWrap(wrap bool, args []string) ([]string, error) {
	f := newFlags("wrap")
	kekS := f.fs.String("kek", "", "")
	keyS := f.fs.String("key", "", "")
	algS := f.fs.String("alg", "", "")
	if err := f.parse(args); err != nil {
		return nil, err
	}
	kek, err := parseHex("kek", *kekS)
	if err != nil {
		return nil, err
	}
	key, err := parseHex("key", *keyS)
	if err != nil {
		return nil, err
	}
	var b cipher.Block
	if *algS != "" {
		a, err := parseAlg(*algS, "des", "tdes", "aes", "sm4")
		if err != nil {
			return nil, err
		}
		if b, err = newCipher(a, kek, "kek"); err != nil {
			return nil, err
		}
	} else if len(kek) == 32 {
		b, _ = newCipher(blockcipher.AES, kek, "kek")
	} else if b, err = desFamilyNamed(kek, "kek"); err != nil {
		return nil, err
	}
	if len(key) == 0 || len(key) > 32 || len(key)%b.BlockSize() != 0 {
		return nil, bad("--key of %d bytes: wrong key length (whole %d-byte blocks, at most 32 bytes)", len(key), b.BlockSize())
	}
	var out []byte
	if wrap {
		out, err = blockcipher.EncryptECB(b, key)
	} else {
		out, err = blockcipher.DecryptECB(b, key)
	}
	if err != nil {
		return nil, bad("%v", err)
	}
	return []string{up(out)}, nil
}

func desFamilyNamed(k []byte, name string) (cipher.Block, error) {
	switch len(k) {
	case 8:
		return newCipher(blockcipher.DES, k, name)
	case 16, 24:
		return newCipher(blockcipher.TDES, k, name)
	}
	return nil, bad("--%s of %d bytes: wrong key length", name, len(k))
}
