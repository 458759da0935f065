package domain

// Read policy of tickets: a platform's replies, a street's inbox.

// AuthorizeOutboxRead tells whether actor may read the replies owed to
// platform: that platform itself, and auditors (for whom a platform not in
// the directory is not found).
func AuthorizeOutboxRead(actor Actor, platform string, dir *Directory) error {
	switch {
	case actor.Role == ActorAuditor:
		if !dir.IsPlatform(platform) {
			return refuse(ErrNotFound, "", "no platform %q", platform)
		}
		return nil
	case actor.Role == ActorPlatform && actor.ID == platform:
		return nil
	}
	return refuse(ErrNotYours, "", "only %s itself and auditors may read its replies", platform)
}

// AuthorizeInboxRead tells whether actor may read the tickets waiting for
// street to sign for them: that street, the district over it, auditors.
func AuthorizeInboxRead(actor Actor, street string, dir *Directory) error {
	if _, ok := dir.Street(street); !ok {
		if actor.Role == ActorAuditor || actor.Role == ActorDistrict {
			return refuse(ErrNotFound, "", "no street %q", street)
		}
		return refuse(ErrNotYours, "", "only %s itself, its district and auditors may read its inbox", street)
	}
	switch actor.Role {
	case ActorAuditor:
		return nil
	case ActorStreet:
		if actor.ID == street {
			return nil
		}
	case ActorDistrict:
		if d, ok := dir.DistrictOf(street); ok && d == actor.ID {
			return nil
		}
	}
	return refuse(ErrNotYours, "", "only %s itself, its district and auditors may read its inbox", street)
}
