package main

import (
	"context"

	"github.com/whistle-gov/whistle/adapters/dashboard"
	"github.com/whistle-gov/whistle/adapters/httpapi"
)

// The web dashboard: GET / (the page), GET /ui/{asset} and GET /v1/me.
func startDashboard(_ context.Context, _ *deps) (running, error) {
	d, err := dashboard.New()
	if err != nil {
		return running{}, err
	}
	return running{serve: func(cfg *httpapi.Config) { cfg.Dashboard = d }}, nil
}
