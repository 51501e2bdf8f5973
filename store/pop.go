package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// POPAccess is the "POP download" setting (DESIGN.md §2).
type POPAccess string

// POP access values.
const (
	POPDisabled POPAccess = "disabled"
	POPAll      POPAccess = "all"
	// POPSince: only mail received since POPSettings.Since: the moment
	// it was chosen ("from now on") or the first instant of a chosen day
	// in the provider's time zone (POPSettings.SinceDay).
	POPSince POPAccess = "since"
)

// OnDelete is what DELE+QUIT does.
type OnDelete string

// OnDelete values.
const (
	KeepOnServer   OnDelete = "keep"
	DeleteOnServer OnDelete = "delete"
)

// POPSettings are an account's POP settings.
type POPSettings struct {
	Access POPAccess
	Since  time.Time // POPSince: mail received at or after this is listed; zero otherwise
	// SinceDay is the day POPSince starts from as chosen (YYYY-MM-DD);
	// "" for "from now on" and the other accesses.
	SinceDay    string
	IncludeSpam bool
	OnDelete    OnDelete
}

// POPUpdate changes the fields that are non-nil.
type POPUpdate struct {
	Access *POPAccess
	// Day, with Access POPSince, is the day POP starts from; nil with
	// POPSince is "from now on".
	Day         *POPDay
	IncludeSpam *bool
	OnDelete    *OnDelete
}

// ErrBadSetting is returned for an unknown setting value.
var ErrBadSetting = errors.New("invalid setting")

// ParsePOPAccess accepts the CLI and form spellings.
func ParsePOPAccess(s string) (POPAccess, error) {
	switch s {
	case "disabled":
		return POPDisabled, nil
	case "all":
		return POPAll, nil
	case "since-now", "since":
		return POPSince, nil
	}
	return "", fmt.Errorf("%w: access %q is not disabled, all or since-now", ErrBadSetting, s)
}

// ParseOnDelete accepts keep or delete.
func ParseOnDelete(s string) (OnDelete, error) {
	switch OnDelete(s) {
	case KeepOnServer, DeleteOnServer:
		return OnDelete(s), nil
	}
	return "", fmt.Errorf("%w: on-delete %q is not keep or delete", ErrBadSetting, s)
}

// CheckPOPUpdate refuses an update every driver refuses before writing:
// an unknown access or on-delete value, or a day (POPUpdate.Day) without
// access since or not spelled YYYY-MM-DD.
func CheckPOPUpdate(u POPUpdate) error {
	if u.Access != nil {
		if _, err := ParsePOPAccess(string(*u.Access)); err != nil {
			return err
		}
	}
	if u.OnDelete != nil {
		if _, err := ParseOnDelete(string(*u.OnDelete)); err != nil {
			return err
		}
	}
	if u.Day != nil && (u.Access == nil || *u.Access != POPSince || !validDay(u.Day.Date)) {
		return fmt.Errorf("%w: a day goes with access since and is YYYY-MM-DD", ErrBadSetting)
	}
	return nil
}

// SetPOP applies u in one transaction and returns the new settings.
// Choosing "all" puts every message back in the POP queue (choosing it
// again re-queues everything); choosing "since" empties the queue and
// records the moment, so only later mail enters it.
func (s *Store) SetPOP(ctx context.Context, address string, u POPUpdate) (POPSettings, error) {
	if err := CheckPOPUpdate(u); err != nil {
		return POPSettings{}, err
	}
	var out POPSettings
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		id, _, err := accountID(ctx, tx, address)
		if err != nil {
			return err
		}
		if u.Access != nil {
			switch *u.Access {
			case POPAll:
				if _, err := tx.ExecContext(ctx, `UPDATE messages SET in_pop = 1 WHERE account_id = ? AND in_pop = 0`, id); err != nil {
					return err
				}
				_, err = tx.ExecContext(ctx, `UPDATE pop_settings SET access = 'all', since = NULL, since_day = NULL WHERE account_id = ?`, id)
			case POPSince:
				err = setPOPSince(ctx, tx, id, u.Day, s.now())
			default:
				_, err = tx.ExecContext(ctx, `UPDATE pop_settings SET access = 'disabled', since = NULL, since_day = NULL WHERE account_id = ?`, id)
			}
			if err != nil {
				return err
			}
		}
		if u.IncludeSpam != nil {
			if _, err := tx.ExecContext(ctx, `UPDATE pop_settings SET include_spam = ? WHERE account_id = ?`, boolInt(*u.IncludeSpam), id); err != nil {
				return err
			}
		}
		if u.OnDelete != nil {
			if _, err := tx.ExecContext(ctx, `UPDATE pop_settings SET on_delete = ? WHERE account_id = ?`, string(*u.OnDelete), id); err != nil {
				return err
			}
		}
		out, err = popSettings(ctx, tx, id)
		return err
	})
	return out, err
}

func popSettings(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}, id int64) (POPSettings, error) {
	return scanPOPSettings(q.QueryRowContext(ctx, `SELECT `+popSettingsColumns+` FROM pop_settings WHERE account_id = ?`, id))
}

func scanPOPSettings(row *sql.Row) (POPSettings, error) {
	var p POPSettings
	var since sql.NullInt64
	var day sql.NullString
	if err := row.Scan(&p.Access, &since, &p.IncludeSpam, &p.OnDelete, &day); err != nil {
		return POPSettings{}, fmt.Errorf("reading POP settings: %w", err)
	}
	if since.Valid {
		p.Since = time.Unix(0, since.Int64)
	}
	p.SinceDay = day.String
	return p, nil
}

// GetPOP returns an account's POP settings.
func (s *Store) GetPOP(ctx context.Context, address string) (POPSettings, error) {
	id, _, err := accountID(ctx, s.r, address)
	if err != nil {
		return POPSettings{}, err
	}
	return popSettings(ctx, s.r, id)
}

// popSettingsColumns are what scanPOPSettings reads, in order.
const popSettingsColumns = `access, since, include_spam, on_delete, since_day`

// setPOPSince chooses POPSince. "From now on" (day nil) empties the POP
// queue and records the moment, so only later mail enters it. A day puts
// the mail received since its first instant back in the queue (as "all"
// does for every message: what a client downloaded and kept is listed
// again), and the listing leaves out anything older.
func setPOPSince(ctx context.Context, tx *sql.Tx, id int64, day *POPDay, now time.Time) error {
	if day == nil {
		if _, err := tx.ExecContext(ctx, `UPDATE messages SET in_pop = 0 WHERE account_id = ? AND in_pop = 1`, id); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `UPDATE pop_settings SET access = 'since', since = ?, since_day = NULL WHERE account_id = ?`, now.UnixNano(), id)
		return err
	}
	start := day.Start.UnixNano()
	if _, err := tx.ExecContext(ctx, `UPDATE messages SET in_pop = 1 WHERE account_id = ? AND in_pop = 0 AND received >= ?`, id, start); err != nil {
		return err
	}
	_, err := tx.ExecContext(ctx, `UPDATE pop_settings SET access = 'since', since = ?, since_day = ? WHERE account_id = ?`, start, day.Date, id)
	return err
}
