package webui

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/skydesk/skydeskd/store"
	"github.com/skydesk/skydeskd/templates/web"
)

// accessSinceDay is the form's value for "from a specific day"; the day
// itself is the since_day field (an HTML date input: YYYY-MM-DD).
const accessSinceDay = "since_day"

// popView is the POP section: the settings and the last POP session.
func (h *Handler) popView(ctx context.Context, l web.Lang, address string) (web.POP, error) {
	pop, err := h.o.Store.GetPOP(ctx, address)
	if err != nil {
		return web.POP{}, err
	}
	last, ok, err := h.o.Store.LastPOPSession(ctx, address)
	if err != nil {
		return web.POP{}, err
	}
	v := web.POP{Access: string(pop.Access), Since: web.FormatTime(l, pop.Since),
		IncludeSpam: pop.IncludeSpam, OnDelete: string(pop.OnDelete),
		Today: h.o.Now().In(h.o.Location).Format("2006-01-02")}
	if pop.Access == store.POPSince && pop.SinceDay != "" {
		v.Access, v.Day, v.DayText = accessSinceDay, pop.SinceDay, web.FormatDay(l, pop.SinceDay)
	}
	if ok {
		v.Last = &web.POPLast{At: web.FormatTime(l, last.At), Remote: last.Remote, Downloaded: last.Downloaded}
	}
	return v, nil
}

// savePOP applies the POP form with the semantics of `skydeskd pop set`.
// The access setting is sent only when the person changed it (or ticked
// "make all mail available again"): choosing "all" re-queues every
// message and "since" empties the queue, so re-sending an unchanged
// choice with an unrelated edit would silently do either. "From a
// specific day" counts as changed when the day differs.
func (h *Handler) savePOP(w http.ResponseWriter, r *http.Request, s signedIn) {
	address := s.address
	form := r.PostForm
	choice := form.Get("access")
	var day *store.POPDay
	if choice == accessSinceDay {
		d, err := store.ParsePOPDay(strings.TrimSpace(form.Get("since_day")), h.o.Location, h.o.Now())
		if errors.Is(err, store.ErrBadSetting) {
			h.done(w, r, s, &flash{errKey: "err_pop_day"})
			return
		}
		day, choice = &d, string(store.POPSince)
	}
	access, err := store.ParsePOPAccess(choice)
	onDelete, err2 := store.ParseOnDelete(form.Get("on_delete"))
	spam := form.Get("spam")
	if err != nil || err2 != nil || (spam != "include" && spam != "exclude") {
		h.done(w, r, s, &flash{errKey: "err_bad_form"})
		return
	}
	include := spam == "include"
	ctx := r.Context()
	cur, err := h.o.Store.GetPOP(ctx, address)
	if err != nil {
		h.internalError(w, r, "reading POP settings", address, err)
		return
	}
	var u store.POPUpdate
	var saved []string
	switch {
	case day != nil && (cur.Access != store.POPSince || cur.SinceDay != day.Date):
		u.Access, u.Day = &access, day
		saved = append(saved, "saved_access_since_day")
	case day != nil:
	case access != cur.Access || (access == store.POPSince && cur.SinceDay != ""):
		u.Access = &access
		saved = append(saved, "saved_access_"+string(access))
	case access == store.POPAll && form.Get("requeue") == "1":
		u.Access = &access
		saved = append(saved, "saved_requeue")
	}
	if include != cur.IncludeSpam {
		u.IncludeSpam = &include
		saved = append(saved, "saved_spam_"+spam)
	}
	if onDelete != cur.OnDelete {
		u.OnDelete = &onDelete
		saved = append(saved, "saved_delete_"+string(onDelete))
	}
	if len(saved) == 0 {
		h.done(w, r, s, &flash{saved: []string{"saved_nothing"}})
		return
	}
	if _, err := h.o.Store.SetPOP(ctx, address, u); err != nil {
		h.internalError(w, r, "saving POP settings", address, err)
		return
	}
	h.o.Log.Info("POP settings changed", "user", address, "changes", strings.Join(saved, ","))
	h.done(w, r, s, &flash{saved: saved})
}
