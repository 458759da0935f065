package projections

// Diff lists every difference between a live model and a replay of the same
// log, one human-readable line each, for example
//
//	stats street=longqiao day=2026-11-23 closed: live 12, replay 11
//	board case 0190… status: live "closed", replay "resolved"
//
// and nothing when they are equal. Both models are read under their own
// locks, one after the other; compare models that are not being written to
// get a consistent answer.
func Diff[M *Stats | *Board](live, replay M) []string {
	switch l := any(live).(type) {
	case *Stats:
		return diffStats(l, any(replay).(*Stats))
	case *Board:
		return diffBoard(l, any(replay).(*Board))
	}
	return nil
}
