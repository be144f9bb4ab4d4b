package upstream

import "time"

// tryEject ejects e if the MaxEjectedPercent cap allows it. The cap is
// floor(endpoints × percent / 100), but at least 1 when percent > 0 and there
// are two endpoints or more. The ejection lasts BaseEjection × (times ejected
// so far, this one included), capped at MaxEjection; the multiplier starts
// over once the endpoint has stayed in for MaxEjection since its last return.
func (u *Upstream) tryEject(e *Endpoint) {
	if u.closed.Load() {
		return
	}
	oc := u.cfg.Outlier
	u.ejectMu.Lock()
	defer u.ejectMu.Unlock()
	s := u.set.Load()
	if s.byAddr[e.Addr] != e {
		return // no longer in the set
	}
	n := len(s.eps)
	limit := n * oc.MaxEjectedPercent / 100
	if limit == 0 && oc.MaxEjectedPercent > 0 && n >= 2 {
		limit = 1
	}
	ejected := 0
	for _, x := range s.eps {
		if x.ejected.Load() {
			ejected++
		}
	}
	if ejected >= limit {
		u.log.Debug("outlier not ejected: max_ejected_percent reached", "addr", e.Addr, "ejected", ejected)
		return
	}
	now := u.clk.Now()
	e.mu.Lock()
	if e.ejected.Load() {
		e.mu.Unlock()
		return
	}
	if !e.returnedAt.IsZero() && now.Sub(e.returnedAt) >= oc.MaxEjection.D() {
		e.ejections = 0
	}
	e.ejections++
	base, maxd := oc.BaseEjection.D(), oc.MaxEjection.D()
	d := maxd
	if int64(e.ejections) <= int64(maxd/base) {
		d = min(base*time.Duration(e.ejections), maxd)
	}
	e.consec5xx, e.consecConnect = 0, 0
	e.ejectedUntil = now.Add(d)
	e.ejected.Store(true)
	e.ejectTimer = u.clk.AfterFunc(d, func() { u.unEject(e) })
	times := e.ejections
	e.mu.Unlock()
	u.log.Info("endpoint ejected", "addr", e.Addr, "for", d, "times", times)
	u.obs.EndpointEjected(u.name, e.Addr, true)
}

// unEject returns e to the pool when its ejection expires.
func (u *Upstream) unEject(e *Endpoint) {
	e.mu.Lock()
	if !e.ejected.Load() {
		e.mu.Unlock()
		return
	}
	e.ejected.Store(false)
	e.ejectedUntil = time.Time{}
	e.returnedAt = u.clk.Now()
	e.ejectTimer = nil
	e.mu.Unlock()
	u.log.Info("endpoint returned from ejection", "addr", e.Addr)
	u.obs.EndpointEjected(u.name, e.Addr, false)
}
