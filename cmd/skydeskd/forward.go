package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/skydesk/skydeskd/store"
	"github.com/skydesk/skydeskd/templates/web"
	"github.com/skydesk/skydeskd/webui"
)

// cmdForward is `forward set|show|off`: set queues the confirmation
// message for a new target (the running server's relay sends it within a
// minute); forwarding starts once the target confirms.
func cmdForward(ctx context.Context, args []string, e env) error {
	which, args, err := sub(args, "forward", "set", "show", "off")
	if err != nil {
		return err
	}
	c := common{getenv: e.getenv}
	fs := newFlags("forward "+which, &c)
	var to, keep *string
	if which == "set" {
		to = fs.String("to", "", "the address mail is forwarded to")
		keep = fs.String("keep", "yes", "yes: keep a copy in the mailbox; no: keep none")
	}
	pos, err := parse(fs, args, "ADDRESS")
	if err != nil {
		return err
	}
	switch which {
	case "show":
		return c.withStore(ctx, func(s storeDriver) error {
			f, err := s.GetForward(ctx, pos[0])
			if errors.Is(err, store.ErrNotFound) {
				if _, aerr := s.GetAccount(ctx, pos[0]); aerr != nil {
					return aerr
				}
				fmt.Fprintln(e.stdout, "forwarding: off")
				return nil
			}
			if err == nil {
				printForward(e.stdout, f)
			}
			return err
		})
	case "off":
		return c.withStore(ctx, func(s storeDriver) error {
			err := s.DisableForward(ctx, pos[0])
			if err == nil || errors.Is(err, store.ErrNotFound) {
				fmt.Fprintln(e.stdout, "forwarding: off")
				return nil
			}
			return err
		})
	}
	if *to == "" {
		return usagef("forward set: --to is required")
	}
	keepOn, err := yesNoFlag("--keep", *keep)
	if err != nil {
		return err
	}
	cfg, err := c.load()
	if err != nil {
		return err
	}
	r, err := web.New()
	if err != nil {
		return err
	}
	return c.withStore(ctx, func(s storeDriver) error {
		f, queued, err := webui.StartForward(ctx, s, r, webui.ForwardRequest{Address: pos[0], Target: *to, Keep: keepOn,
			WebURL: cfg.Provider.WebURL, Relay: cfg.SMTP.Smarthost.Host != "", Now: time.Now()})
		if err != nil {
			return err
		}
		printForward(e.stdout, f)
		if queued {
			fmt.Fprintf(e.stdout, "a confirmation link was sent to %s; forwarding starts when it is confirmed\n", f.Target)
		}
		return nil
	})
}

func yesNoFlag(name, v string) (bool, error) {
	switch v {
	case "yes":
		return true, nil
	case "no":
		return false, nil
	}
	return false, fmt.Errorf("%s: %q is not yes or no", name, v)
}

func printForward(w io.Writer, f store.Forward) {
	state := "on"
	if !f.Confirmed {
		state = "pending confirmation (link valid until " + f.Expires.UTC().Format(time.RFC3339) + ")"
	}
	fmt.Fprintf(w, "forwarding: %s\nto: %s\nkeep: %s\n", state, f.Target, yesNo(f.Keep))
}
