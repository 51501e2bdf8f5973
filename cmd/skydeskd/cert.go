package main

import (
	"context"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/skydesk/skydeskd/certs"
)

// cmdCert is `skydeskd cert list`: every name ACME manages (service hosts,
// then autoconfig./autodiscover. of each hosted domain) with the issuer
// and expiry of its certificate in the store and the last error since its
// last success. It reads the shared store, so it shows what every node
// serves.
func cmdCert(ctx context.Context, args []string, e env) error {
	which, args, err := sub(args, "cert", "list")
	if err != nil {
		return err
	}
	var c common
	fs := newFlags("cert "+which, &c)
	if _, err := parse(fs, args); err != nil {
		return err
	}
	cfg, err := c.load()
	if err != nil {
		return err
	}
	if !cfg.ACME.Enabled {
		fmt.Fprintln(e.stderr, "note: acme.enabled is false; the tls section's certificate is served")
	}
	return c.withStore(ctx, func(s storeDriver) error {
		domains, err := s.ListDomains(ctx)
		if err != nil {
			return err
		}
		sts, err := certs.Inspect(ctx, s.CertBackend(), certs.Names(acmeServiceNames(cfg), domains))
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tISSUER\tNOT AFTER\tLAST ERROR")
		for _, st := range sts {
			issuer, notAfter, lastErr := "-", "-", "-"
			if !st.NotAfter.IsZero() {
				issuer, notAfter = st.Issuer, st.NotAfter.UTC().Format(time.RFC3339)
			}
			if st.LastError != "" {
				lastErr = st.LastErrorAt.UTC().Format(time.RFC3339) + " " + oneLine(fmt.Errorf("%s", st.LastError))
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", st.Name, issuer, notAfter, lastErr)
		}
		return tw.Flush()
	})
}
