package main

import (
	"github.com/whistle-gov/whistle/domain"
)

// names puts the directory's names beside ids ("龙桥街道 (longqiao)"). Each
// kind of id has its own map: a street and one of its communities may share
// an id (zhenhai: 镇海街道 and 镇海社区).
type names struct {
	streets     map[string]string
	communities map[[2]string]string // street, community
	community   map[string]string    // community alone, for figures keyed by it
	orgs        map[string]string    // departments and units
	categories  map[string]string
}

func newNames(dir *domain.Directory) *names {
	n := &names{streets: map[string]string{}, communities: map[[2]string]string{}, community: map[string]string{},
		orgs: map[string]string{}, categories: map[string]string{}}
	if dir == nil {
		return n
	}
	for _, s := range dir.Streets {
		n.streets[s.ID] = s.Name
		for _, c := range s.Communities {
			n.communities[[2]string{s.ID, c.ID}] = c.Name
			if _, seen := n.community[c.ID]; !seen {
				n.community[c.ID] = c.Name
			}
		}
	}
	for _, o := range append(append([]domain.Organisation(nil), dir.Departments...), dir.Units...) {
		n.orgs[o.ID] = o.Name
	}
	for _, c := range dir.Categories {
		n.categories[c.ID] = c.Name
	}
	return n
}

// names returns the directory's names, read once per run; when it cannot
// be read the tables show ids alone.
func (a *app) dirNames() *names {
	if a.names != nil {
		return a.names
	}
	var dir *domain.Directory
	if c, err := a.api(); err == nil {
		dir, _ = c.Directory(a.ctx)
	}
	a.names = newNames(dir)
	return a.names
}

func named(name, id string) cell {
	if id == "" {
		return cell{}
	}
	if name == "" || name == id {
		return cell{full: id}
	}
	return cell{full: name + " (" + id + ")", short: id}
}

func (n *names) street(id string) cell   { return named(n.streets[id], id) }
func (n *names) org(id string) cell      { return named(n.orgs[id], id) }
func (n *names) category(id string) cell { return named(n.categories[id], id) }

// where is a case's street and community: the community's name beside
// both ids.
func (n *names) where(street, community string) cell {
	id := street + "/" + community
	if name := n.communities[[2]string{street, community}]; name != "" {
		return cell{full: name + " (" + id + ")", short: id}
	}
	return cell{full: id}
}

// key names a figures' group key by what the figures are grouped by.
func (n *names) key(groupBy, key string) cell {
	switch groupBy {
	case "street":
		return n.street(key)
	case "community":
		return named(n.community[key], key)
	case "assignee":
		return n.org(key)
	case "category":
		return n.category(key)
	}
	return text(key)
}
