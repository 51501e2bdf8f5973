package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/skydesk/skydeskd/config"
)

// common holds the flags every command takes, and the command's getenv
// (hashParams reads SKYDESKD_TEST_FAST_HASH through it).
type common struct {
	configFile string
	dataDir    string
	getenv     func(string) string
}

func newFlags(name string, c *common) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&c.configFile, "config", "", "YAML configuration file")
	fs.StringVar(&c.dataDir, "data", "", "data directory (overrides data_dir)")
	return fs
}

// parse parses flags interspersed with positional arguments (so
// `user add ADDRESS --password-stdin` works) and checks the count.
func parse(fs *flag.FlagSet, args []string, names ...string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, usagef("%s: %v", fs.Name(), err)
		}
		args = fs.Args()
		if len(args) == 0 {
			break
		}
		if args[0] == "--" {
			pos = append(pos, args[1:]...)
			break
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
	if len(pos) != len(names) {
		return nil, usagef("%s: want %s", fs.Name(), strings.Join(names, " "))
	}
	return pos, nil
}

// load returns the configuration named by the flags.
func (c *common) load() (*config.Config, error) {
	var cfg *config.Config
	if c.configFile != "" {
		var err error
		if cfg, err = config.Load(c.configFile); err != nil {
			return nil, err
		}
	} else {
		cfg = config.Default()
	}
	if c.dataDir != "" {
		cfg.DataDir = c.dataDir
	}
	return cfg, nil
}

// adminFlags returns the flags that make another command use the same
// configuration and data directory, with a leading space ("" for none).
func (c *common) adminFlags() string {
	var s string
	if c.configFile != "" {
		s += " --config " + shellQuote(c.configFile)
	}
	if c.dataDir != "" {
		s += " --data " + shellQuote(c.dataDir)
	}
	return s
}

// shellQuote quotes s for a POSIX shell when it needs quoting.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789@%+=:,./_-") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// withStore runs f with the store of the flags' configuration.
func (c *common) withStore(ctx context.Context, f func(storeDriver) error) error {
	cfg, err := c.load()
	if err != nil {
		return err
	}
	s, err := openStore(ctx, cfg, hashParams(c.getenv))
	if err != nil {
		return err
	}
	return errors.Join(f(s), s.Close())
}

// oneLine keeps an error on one line for the terminal.
func oneLine(err error) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(err.Error(), "\n", "; ")), " ")
}

// onOff parses on|off.
func onOff(name, v string) (bool, error) {
	switch v {
	case "on":
		return true, nil
	case "off":
		return false, nil
	}
	return false, fmt.Errorf("--%s: %q is not on or off", name, v)
}
