package templates

import (
	"crypto/x509"
	"testing"
	"time"
)

func BenchmarkThunderbird(b *testing.B) {
	p, a := fixtures[1].resolve(b)
	for b.Loop() {
		if _, err := Thunderbird(p, a); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAutodiscoverPOX(b *testing.B) {
	p, a := fixtures[1].resolve(b)
	for b.Loop() {
		if _, err := AutodiscoverPOX(p, a); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAutodiscoverError(b *testing.B) {
	now := time.Now()
	for b.Loop() {
		if _, err := AutodiscoverError(CodeNotFound, "autodiscover.skydesk.jp", now); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAutodiscoverJSON(b *testing.B) {
	for b.Loop() {
		if _, err := AutodiscoverJSON("autodiscover.skydesk.jp"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkMobileConfig(b *testing.B) {
	p, a := fixtures[1].resolve(b)
	for b.Loop() {
		if _, err := MobileConfig(p, a); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSign is the cost a cache miss of a signed profile adds
// (ECDSA P-256, as the self-signed service certificate).
func BenchmarkSign(b *testing.B) {
	_, inter, leaf, key := testChain(b)
	p, a := fixtures[1].resolve(b)
	content, err := MobileConfig(p, a)
	if err != nil {
		b.Fatal(err)
	}
	s := Signer{Cert: leaf, Chain: []*x509.Certificate{inter}, Key: key}
	for b.Loop() {
		if _, err := Sign(content, s); err != nil {
			b.Fatal(err)
		}
	}
}
