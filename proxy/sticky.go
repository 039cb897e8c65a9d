package proxy

import (
	"bytes"
	"math/rand/v2"
)

// Buckets: a user's key hashes to one of 10000 buckets, and the user goes
// to the new side iff the bucket is below the new side's weight × 100. A
// user's bucket never changes, so raising the weight only ever moves users
// from legacy to new.
const buckets = 10000

// bucketOf maps a key to its bucket. The function is part of the contract
// between proxy replicas and versions: changing it reshuffles every user.
// FNV-1a (64 bit) followed by the MurmurHash3 finalizer, which spreads
// FNV's weak low bits before the modulo.
func bucketOf(key []byte) int {
	h := uint64(14695981039346656037)
	for _, c := range key {
		h ^= uint64(c)
		h *= 1099511628211
	}
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return int(h % buckets)
}

// BucketOf returns the bucket (0..9999) of a sticky key, for tools that
// must predict where a user goes.
func BucketOf(key string) int { return bucketOf([]byte(key)) }

// cookieValue finds the value of the cookie name in the Cookie fields of
// a request head; nil when absent or empty.
func cookieValue(h *reqHead, name []byte) []byte {
	for i := range h.fields {
		f := &h.fields[i]
		if f.kind != hkCookie {
			continue
		}
		v := f.value
		for len(v) > 0 {
			var pair []byte
			if j := bytes.IndexByte(v, ';'); j >= 0 {
				pair, v = v[:j], v[j+1:]
			} else {
				pair, v = v, nil
			}
			pair = trimOWS(pair)
			if len(pair) <= len(name) || pair[len(name)] != '=' || !bytes.Equal(pair[:len(name)], name) {
				continue
			}
			val := pair[len(name)+1:]
			if len(val) >= 2 && val[0] == '"' && val[len(val)-1] == '"' {
				val = val[1 : len(val)-1]
			}
			if len(val) > 0 {
				return val
			}
		}
	}
	return nil
}

// headerValue returns the first value of the field name; nil when absent
// or empty.
func headerValue(h *reqHead, name []byte) []byte {
	for i := range h.fields {
		f := &h.fields[i]
		if len(f.name) == len(name) && eqFoldBytes(f.name, name) && len(f.value) > 0 {
			return f.value
		}
	}
	return nil
}

// newCookieValue returns a fresh random key: 16 hex digits. It is not a
// secret; a client that sets its own value only chooses its own side.
func newCookieValue(dst []byte) []byte {
	const hexd = "0123456789abcdef"
	v := rand.Uint64()
	for i := 0; i < 16; i++ {
		dst = append(dst, hexd[v>>60])
		v <<= 4
	}
	return dst
}
