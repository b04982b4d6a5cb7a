// Command go-verifier checks a running fundtrail gateway with implementations that are not ours:
// golang.org/x/mod/sumdb/note for the C2SP signed-note checkpoints and
// github.com/transparency-dev/merkle (proof, rfc6962) for RFC 6962/9162 inclusion and consistency proofs.
//
// It verifies the log signature of every listed checkpoint, every witness cosignature (C2SP
// tlog-cosignature/v1) on them by a -witness key, that each -witness cosigned the latest checkpoint,
// the consistency proof between each pair of successive checkpoints, and the inclusion proof of every
// trail entry of the funds named with -fund against the latest checkpoint, recomputing each leaf hash
// from the served leaf bytes.
// It prints one line per failure and a final "OK ..." line, and exits 1 if anything failed.
package main

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"
)

type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

type client struct {
	base  *url.URL
	token string
	http  *http.Client
}

func (c *client) get(path string, auth bool) ([]byte, error) {
	ref, err := url.Parse(path)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequest(http.MethodGet, c.base.ResolveReference(ref).String(), nil)
	if err != nil {
		return nil, err
	}
	if auth && c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: HTTP %d: %.200s", path, resp.StatusCode, body)
	}
	return body, nil
}

func (c *client) getJSON(path string, auth bool, out any) error {
	body, err := c.get(path, auth)
	if err != nil {
		return err
	}
	return json.Unmarshal(body, out)
}

// checkpoint is what a verified note says, and which -witness keys validly cosigned it.
type checkpoint struct {
	origin   string
	size     uint64
	root     []byte
	cosigned map[string]bool
}

// parseCheckpoint reads the tlog-checkpoint body: origin, decimal size, base64 root, extension lines.
func parseCheckpoint(text string) (checkpoint, error) {
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	if !strings.HasSuffix(text, "\n") || len(lines) < 3 {
		return checkpoint{}, errors.New("a checkpoint has an origin, a size and a root line")
	}
	size, err := strconv.ParseUint(lines[1], 10, 64)
	if err != nil || strconv.FormatUint(size, 10) != lines[1] {
		return checkpoint{}, fmt.Errorf("bad tree size %q", lines[1])
	}
	root, err := base64.StdEncoding.DecodeString(lines[2])
	if err != nil || len(root) != 32 {
		return checkpoint{}, fmt.Errorf("bad root hash %q", lines[2])
	}
	return checkpoint{origin: lines[0], size: size, root: root}, nil
}

func decodeHashes(hexes []string) ([][]byte, error) {
	out := make([][]byte, len(hexes))
	for i, h := range hexes {
		b, err := hex.DecodeString(h)
		if err != nil || len(b) != 32 {
			return nil, fmt.Errorf("bad proof hash %q", h)
		}
		out[i] = b
	}
	return out, nil
}

// algCosignatureV1 is the signed-note signature type of tlog-cosignature/v1 (timestamped Ed25519).
const algCosignatureV1 = 0x04

// cosigner verifies a witness's cosignature/v1 lines; golang.org/x/mod/sumdb/note knows only type
// 0x01, but opens a note with any note.Verifier, so this one supplies the cosignature algorithm:
// the signature is an 8-byte big-endian timestamp and an Ed25519 signature of
// "cosignature/v1\ntime <timestamp>\n" followed by the checkpoint text.
type cosigner struct {
	name string
	hash uint32
	key  ed25519.PublicKey
}

func (c *cosigner) Name() string    { return c.name }
func (c *cosigner) KeyHash() uint32 { return c.hash }
func (c *cosigner) Verify(msg, sig []byte) bool {
	if len(sig) != 8+ed25519.SignatureSize {
		return false
	}
	ts := binary.BigEndian.Uint64(sig[:8])
	if ts > 1<<63-1 {
		return false
	}
	signed := append([]byte(fmt.Sprintf("cosignature/v1\ntime %d\n", ts)), msg...)
	return ed25519.Verify(c.key, signed, sig[8:])
}

// newCosigner parses a cosigner vkey: name+hash+base64(0x04 || 32-byte Ed25519 key), the hash being
// SHA-256(name || 0x0A || 0x04 || key)[:4].
func newCosigner(vkey string) (*cosigner, error) {
	name, rest, ok1 := strings.Cut(vkey, "+")
	hash16, key64, ok2 := strings.Cut(rest, "+")
	if !ok1 || !ok2 || name == "" {
		return nil, errors.New("a vkey is name+hash+key")
	}
	parts := [3]string{name, hash16, key64}
	hash, err := strconv.ParseUint(parts[1], 16, 32)
	if err != nil || len(parts[1]) != 8 {
		return nil, fmt.Errorf("bad key hash %q", parts[1])
	}
	raw, err := base64.StdEncoding.DecodeString(parts[2])
	if err != nil || len(raw) != 1+ed25519.PublicKeySize || raw[0] != algCosignatureV1 {
		return nil, errors.New("not a cosignature/v1 (type 0x04) Ed25519 key")
	}
	h := sha256.Sum256(append([]byte(parts[0]+"\n"), raw...))
	if binary.BigEndian.Uint32(h[:4]) != uint32(hash) {
		return nil, errors.New("the key hash does not match the name and key")
	}
	return &cosigner{name: parts[0], hash: uint32(hash), key: ed25519.PublicKey(raw[1:])}, nil
}

type verifier struct {
	c         *client
	verifier  note.Verifier
	witnesses []*cosigner
	failures  int
	hasher    *rfc6962.Hasher
}

func (v *verifier) fail(format string, args ...any) {
	v.failures++
	fmt.Printf("FAIL: "+format+"\n", args...)
}

// openNote verifies a signed note with the log key and the witness keys (a line by a known key that
// does not verify fails the note) and parses its checkpoint.
func (v *verifier) openNote(msg []byte) (checkpoint, error) {
	keys := []note.Verifier{v.verifier}
	for _, w := range v.witnesses {
		keys = append(keys, w)
	}
	n, err := note.Open(msg, note.VerifierList(keys...))
	if err != nil {
		return checkpoint{}, err
	}
	cp, err := parseCheckpoint(n.Text)
	if err != nil {
		return checkpoint{}, err
	}
	if cp.origin != v.verifier.Name() {
		return checkpoint{}, fmt.Errorf("origin %q is not the log key's name %q", cp.origin, v.verifier.Name())
	}
	logSigned := false
	cp.cosigned = map[string]bool{}
	for _, sig := range n.Sigs {
		if sig.Name == v.verifier.Name() && sig.Hash == v.verifier.KeyHash() {
			logSigned = true
		}
		for _, w := range v.witnesses {
			if sig.Name == w.name && sig.Hash == w.hash {
				cp.cosigned[w.name] = true
			}
		}
	}
	if !logSigned {
		return checkpoint{}, errors.New("the log's own signature is missing (only cosignatures verified)")
	}
	return cp, nil
}

type checkpointJSON struct {
	TreeSize uint64 `json:"tree_size"`
	RootHash string `json:"root_hash"`
	LogID    string `json:"log_id"`
	Note     string `json:"note"`
}

// checkpoints lists every checkpoint, verifies each signed note, and returns them in size order.
func (v *verifier) checkpoints() []checkpoint {
	var out []checkpoint
	next := "/v1/checkpoints?limit=200"
	for next != "" {
		var page struct {
			Items []checkpointJSON `json:"items"`
			Next  *string          `json:"next"`
		}
		if err := v.c.getJSON(next, false, &page); err != nil {
			v.fail("listing checkpoints: %v", err)
			return out
		}
		for _, item := range page.Items {
			raw, err := v.c.get(fmt.Sprintf("/v1/checkpoints/%d/note", item.TreeSize), false)
			if err != nil {
				v.fail("checkpoint %d: %v", item.TreeSize, err)
				continue
			}
			cp, err := v.openNote(raw)
			if err != nil {
				v.fail("checkpoint %d: signed note does not verify: %v", item.TreeSize, err)
				continue
			}
			if _, err := v.openNote([]byte(item.Note)); err != nil {
				v.fail("checkpoint %d: the JSON listing's note does not verify: %v", item.TreeSize, err)
				continue
			}
			if cp.size != item.TreeSize || hex.EncodeToString(cp.root) != item.RootHash || cp.origin != item.LogID {
				v.fail("checkpoint %d: the signed note says size %d root %x, the JSON says otherwise",
					item.TreeSize, cp.size, cp.root)
				continue
			}
			if len(out) > 0 && cp.size <= out[len(out)-1].size {
				v.fail("checkpoint %d listed after %d: not in increasing size", cp.size, out[len(out)-1].size)
				continue
			}
			out = append(out, cp)
		}
		next = ""
		if page.Next != nil {
			next = *page.Next
		}
	}
	return out
}

// consistency checks each checkpoint extends the one before it.
func (v *verifier) consistency(cps []checkpoint) int {
	checked := 0
	for i := 1; i < len(cps); i++ {
		a, b := cps[i-1], cps[i]
		var doc struct {
			Proof struct {
				OldSize uint64   `json:"old_size"`
				NewSize uint64   `json:"new_size"`
				Hashes  []string `json:"hashes"`
			} `json:"consistency_proof"`
		}
		path := fmt.Sprintf("/v1/proofs/consistency?old_size=%d&new_size=%d", a.size, b.size)
		if err := v.c.getJSON(path, true, &doc); err != nil {
			v.fail("consistency %d -> %d: %v", a.size, b.size, err)
			continue
		}
		hashes, err := decodeHashes(doc.Proof.Hashes)
		if err == nil && (doc.Proof.OldSize != a.size || doc.Proof.NewSize != b.size) {
			err = fmt.Errorf("proof is for sizes %d -> %d", doc.Proof.OldSize, doc.Proof.NewSize)
		}
		if err == nil {
			err = proof.VerifyConsistency(v.hasher, a.size, b.size, hashes, a.root, b.root)
		}
		if err != nil {
			v.fail("consistency %d -> %d: %v", a.size, b.size, err)
			continue
		}
		checked++
	}
	return checked
}

type trailItem struct {
	LeafIndex uint64  `json:"leaf_index"`
	LeafHash  string  `json:"leaf_hash"`
	LeafData  *string `json:"leaf_data"` // served with each item once issue 19 item 1 lands
}

// inclusion proves every trail entry of a fund is in the latest checkpoint's tree.
func (v *verifier) inclusion(fund string, latest checkpoint) int {
	checked := 0
	next := "/v1/funds/" + url.PathEscape(fund) + "/trail?limit=200"
	for next != "" {
		var page struct {
			Items []trailItem `json:"items"`
			Next  *string     `json:"next"`
		}
		if err := v.c.getJSON(next, true, &page); err != nil {
			v.fail("trail of %s: %v", fund, err)
			return checked
		}
		for _, item := range page.Items {
			if item.LeafIndex >= latest.size {
				continue // appended after the latest checkpoint
			}
			if v.proveEntry(fund, item, latest) {
				checked++
			}
		}
		next = ""
		if page.Next != nil {
			next = *page.Next
		}
	}
	if checked == 0 {
		v.fail("fund %s: no trail entry under the latest checkpoint", fund)
	}
	return checked
}

func (v *verifier) proveEntry(fund string, item trailItem, latest checkpoint) bool {
	var doc struct {
		LeafIndex uint64 `json:"leaf_index"`
		LeafHash  string `json:"leaf_hash"`
		LeafData  string `json:"leaf_data"`
		Proof     struct {
			LeafIndex uint64   `json:"leaf_index"`
			TreeSize  uint64   `json:"tree_size"`
			Hashes    []string `json:"hashes"`
		} `json:"inclusion_proof"`
	}
	path := fmt.Sprintf("/v1/proofs/entries/%d?tree_size=%d", item.LeafIndex, latest.size)
	if err := v.c.getJSON(path, true, &doc); err != nil {
		v.fail("%s leaf %d: %v", fund, item.LeafIndex, err)
		return false
	}
	data, err := base64.StdEncoding.DecodeString(doc.LeafData)
	if err != nil {
		v.fail("%s leaf %d: leaf data is not base64", fund, item.LeafIndex)
		return false
	}
	// The leaf hash is recomputed here from the served bytes, never taken from the server.
	leafHash := v.hasher.HashLeaf(data)
	if hex.EncodeToString(leafHash) != item.LeafHash || hex.EncodeToString(leafHash) != doc.LeafHash {
		v.fail("%s leaf %d: SHA-256(0x00 || leaf data) is %x, the server says %s / %s",
			fund, item.LeafIndex, leafHash, item.LeafHash, doc.LeafHash)
		return false
	}
	// The bytes the trail showed must be the very bytes proven (null: withheld from a regional reader).
	if item.LeafData != nil {
		fromTrail, err := base64.StdEncoding.DecodeString(*item.LeafData)
		if err != nil || !bytes.Equal(fromTrail, data) {
			v.fail("%s leaf %d: the trail item's leaf data differs from the proof's", fund, item.LeafIndex)
			return false
		}
	}
	hashes, err := decodeHashes(doc.Proof.Hashes)
	if err == nil && (doc.Proof.LeafIndex != item.LeafIndex || doc.Proof.TreeSize != latest.size) {
		err = fmt.Errorf("proof is for leaf %d in size %d", doc.Proof.LeafIndex, doc.Proof.TreeSize)
	}
	if err == nil {
		err = proof.VerifyInclusion(v.hasher, item.LeafIndex, latest.size, leafHash, hashes, latest.root)
	}
	if err != nil {
		v.fail("%s leaf %d: inclusion: %v", fund, item.LeafIndex, err)
		return false
	}
	return true
}

func main() {
	api := flag.String("api", "", "gateway base URL, e.g. http://127.0.0.1:8080")
	logKey := flag.String("log-key", "", "the log's note verifier key (name+hash+key), obtained out of band")
	token := flag.String("token", os.Getenv("FUNDTRAIL_TOKEN"), "bearer token (auditor) for proofs and trails")
	var funds, witnessKeys listFlag
	flag.Var(&funds, "fund", "fund document number whose every trail entry is proved (repeatable)")
	flag.Var(&witnessKeys, "witness", "a witness's cosigner vkey (type 0x04) that must have cosigned the latest checkpoint (repeatable)")
	flag.Parse()
	if *api == "" || *logKey == "" {
		fmt.Fprintln(os.Stderr, "usage: go-verifier -api URL -log-key VKEY [-token T] [-fund DOC ...]")
		os.Exit(2)
	}
	base, err := url.Parse(strings.TrimSuffix(*api, "/") + "/")
	if err != nil {
		fmt.Fprintln(os.Stderr, "bad -api:", err)
		os.Exit(2)
	}
	nv, err := note.NewVerifier(strings.TrimSpace(*logKey))
	if err != nil {
		fmt.Fprintln(os.Stderr, "bad -log-key:", err)
		os.Exit(2)
	}
	v := &verifier{
		c:        &client{base: base, token: *token, http: &http.Client{Timeout: 30 * time.Second}},
		verifier: nv,
		hasher:   rfc6962.DefaultHasher,
	}
	for _, wk := range witnessKeys {
		w, err := newCosigner(strings.TrimSpace(wk))
		if err != nil {
			fmt.Fprintln(os.Stderr, "bad -witness:", err)
			os.Exit(2)
		}
		v.witnesses = append(v.witnesses, w)
	}
	cps := v.checkpoints()
	cosignatures := 0
	for _, cp := range cps {
		cosignatures += len(cp.cosigned)
	}
	if len(cps) > 0 {
		for _, w := range v.witnesses {
			if latest := cps[len(cps)-1]; !latest.cosigned[w.name] {
				v.fail("checkpoint %d: not cosigned by witness %s: this checkpoint was not witnessed", latest.size, w.name)
			}
		}
	}
	consistent := v.consistency(cps)
	included := 0
	if len(cps) == 0 {
		v.fail("no checkpoint verified")
	} else {
		for _, fund := range funds {
			included += v.inclusion(fund, cps[len(cps)-1])
		}
	}
	if v.failures > 0 {
		fmt.Printf("FAILED: %d problem(s)\n", v.failures)
		os.Exit(1)
	}
	latest := cps[len(cps)-1]
	fmt.Printf("OK origin=%s checkpoints=%d consistency=%d inclusion=%d cosignatures=%d latest_size=%d latest_root=%x\n",
		latest.origin, len(cps), consistent, included, cosignatures, latest.size, latest.root)
}
