package main

import (
	"context"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"

	"github.com/whistle-gov/whistle/adapters/config"
	"github.com/whistle-gov/whistle/domain"
	"go.uber.org/zap"
)

// livePrincipals are the principals file as last loaded; SIGHUP loads it
// again, so that tokens are revoked and added without a restart. Safe for
// concurrent use.
type livePrincipals struct {
	cur atomic.Pointer[config.Principals]
}

func newLivePrincipals(p *config.Principals) *livePrincipals {
	l := &livePrincipals{}
	l.cur.Store(p)
	return l
}

// Authenticate implements httpapi.Authenticator and natsauth.Authenticator
// with the principals loaded last.
func (l *livePrincipals) Authenticate(token string) (domain.Actor, bool) {
	return l.cur.Load().Authenticate(token)
}

// Actors lists the principals loaded last.
func (l *livePrincipals) Actors() []domain.Actor { return l.cur.Load().Actors() }

// reloadOnHangUp loads the principals file again at each SIGHUP until ctx
// is done. A file that does not load leaves the principals as they were,
// and says why.
func (l *livePrincipals) reloadOnHangUp(ctx context.Context, path string, dir *domain.Directory, log *zap.Logger) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		defer signal.Stop(hup)
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				p, err := config.LoadPrincipals(path, dir)
				if err != nil {
					log.Error("SIGHUP: the principals file did not load; the principals stay as they were", zap.Error(err))
					continue
				}
				l.cur.Store(p)
				log.Info("SIGHUP: principals reloaded", zap.String("file", path), zap.Int("principals", len(p.Actors())))
			}
		}
	}()
}
