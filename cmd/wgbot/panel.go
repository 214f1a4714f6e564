package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"

	"wgbot/config"
	"wgbot/panel"
)

// panelLinks is the web panel's link issuer from the settings.
func (a *app) panelLinks() (*panel.Links, error) {
	return panel.NewLinks(a.store, panel.LinkConfig{BaseURL: a.settings.PanelURL, AdminIDs: a.settings.AdminIDs})
}

// panelRoutes adds the panel to routes, by method so that no other
// route's pattern (the sandbox's "GET /") overlaps it.
func panelRoutes(routes map[string]http.Handler, h http.Handler) {
	routes["GET /panel/"] = h
	routes["POST /panel/"] = h
}

// panelLink is `wgbot panel-link --admin ID`: a one-time sign-in link to
// the web panel for an admin, as the bot's /panel gives.
func panelLink(ctx context.Context, s config.Settings, args []string, log *slog.Logger, stdout io.Writer) error {
	fs := flag.NewFlagSet("panel-link", flag.ContinueOnError)
	admin := fs.Int64("admin", 0, "the admin's Telegram id (one of ADMIN_IDS)")
	if err := fs.Parse(args); err != nil {
		return usageError{err.Error()}
	}
	if *admin <= 0 || fs.NArg() > 0 {
		return usageError{"usage: wgbot panel-link --admin TELEGRAM_ID"}
	}
	if s.PanelURL == "" {
		return usageError{"PANEL_URL is not set: the panel is off"}
	}
	a, err := openApp(ctx, s, log, false)
	if err != nil {
		return err
	}
	defer a.Close()
	links, err := a.panelLinks()
	if err != nil {
		return err
	}
	link, err := links.PanelLink(ctx, *admin)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s\n(works once, within %s)\n", link, panel.DefaultLinkTTL)
	return nil
}
