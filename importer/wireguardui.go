package importer

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// wireguardUIClient is one file of wireguard-ui's db/clients/.
type wireguardUIClient struct {
	ID           string   `json:"id"`
	PrivateKey   string   `json:"private_key"`
	PublicKey    string   `json:"public_key"`
	PresharedKey string   `json:"preshared_key"`
	Name         string   `json:"name"`
	Email        string   `json:"email"`
	AllocatedIPs []string `json:"allocated_ips"`
	Enabled      *bool    `json:"enabled"`
}

// WireguardUI reads wireguard-ui's JSON database: dir is the database
// directory (holding clients/) or its clients/ directory itself. The
// client's email becomes the device's note.
func WireguardUI(dir string) (List, error) {
	clients := filepath.Join(dir, "clients")
	if st, err := os.Stat(clients); err != nil || !st.IsDir() {
		clients = dir
	}
	names, err := filepath.Glob(filepath.Join(clients, "*.json"))
	if err != nil {
		return List{}, err
	}
	if len(names) == 0 {
		if _, err := os.Stat(clients); err != nil {
			return List{}, fmt.Errorf("wireguard-ui database: %w", err)
		}
	}
	slices.Sort(names)
	l := List{Source: FromWireguardUI}
	for _, name := range names {
		data, err := os.ReadFile(name)
		if err != nil {
			return List{}, err
		}
		var wc wireguardUIClient
		if err := json.Unmarshal(data, &wc); err != nil {
			return List{}, fmt.Errorf("wireguard-ui client %s: %w", filepath.Base(name), err)
		}
		ref := strings.TrimSuffix(filepath.Base(name), ".json")
		c, why := client(ref, wc.Name, wc.PublicKey, wc.PrivateKey, wc.PresharedKey, wc.AllocatedIPs)
		if why != "" {
			l.Skipped = append(l.Skipped, Skipped{Ref: ref, Name: c.Name, Reason: why})
			continue
		}
		c.Enabled = wc.Enabled == nil || *wc.Enabled
		c.Note = strings.TrimSpace(wc.Email)
		l.Clients = append(l.Clients, c)
	}
	return l, nil
}
