package importer

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	_ "modernc.org/sqlite" // pure Go: no cgo in the build
)

// wgEasyV14 is wg-easy v14's wg0.json: the server and the clients by id.
type wgEasyV14 struct {
	Server struct {
		PublicKey string `json:"publicKey"`
		Address   string `json:"address"`
	} `json:"server"`
	Clients map[string]struct {
		ID           string  `json:"id"`
		Name         string  `json:"name"`
		Address      string  `json:"address"`
		PrivateKey   string  `json:"privateKey"`
		PublicKey    string  `json:"publicKey"`
		PreSharedKey string  `json:"preSharedKey"`
		Enabled      *bool   `json:"enabled"`
		ExpiredAt    *string `json:"expiredAt"`
	} `json:"clients"`
}

// WgEasyJSON reads wg-easy v14's wg0.json.
func WgEasyJSON(data []byte) (List, error) {
	var doc wgEasyV14
	if err := json.Unmarshal(data, &doc); err != nil {
		return List{}, fmt.Errorf("wg-easy wg0.json: %w", err)
	}
	if doc.Clients == nil {
		return List{}, fmt.Errorf("wg-easy wg0.json: no \"clients\" object: not a wg-easy v14 file")
	}
	ids := make([]string, 0, len(doc.Clients))
	for id := range doc.Clients {
		ids = append(ids, id)
	}
	slices.Sort(ids) // the map's order is random; the report's is not
	l := List{Source: FromWgEasy}
	for _, id := range ids {
		wc := doc.Clients[id]
		c, why := client(id, wc.Name, wc.PublicKey, wc.PrivateKey, wc.PreSharedKey, []string{wc.Address})
		if why == "" && wc.ExpiredAt != nil && *wc.ExpiredAt != "" {
			t, err := parseTime(*wc.ExpiredAt)
			if err != nil {
				why = err.Error()
			}
			c.ExpiresAt = &t
		}
		if why != "" {
			l.Skipped = append(l.Skipped, Skipped{Ref: id, Name: c.Name, Reason: why})
			continue
		}
		c.Enabled = wc.Enabled == nil || *wc.Enabled
		l.Clients = append(l.Clients, c)
	}
	return l, nil
}

// WgEasySQLite reads wg-easy v15's database (drizzle's clients_table),
// opened read-only: the old tool may still be running.
func WgEasySQLite(path string) (List, error) {
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro&_pragma=busy_timeout(5000)")
	if err != nil {
		return List{}, fmt.Errorf("wg-easy database %s: %w", path, err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT id, name, ipv4_address, ipv6_address, private_key, public_key, pre_shared_key,
		expires_at, enabled FROM clients_table ORDER BY id`)
	if err != nil {
		return List{}, fmt.Errorf("wg-easy database %s: %w (is it wg-easy v15's wg-easy.db?)", path, err)
	}
	defer rows.Close()
	l := List{Source: FromWgEasy}
	for rows.Next() {
		var id int64
		var name, v4, v6, priv, pub string
		var psk, expires sql.NullString
		var enabled bool
		if err := rows.Scan(&id, &name, &v4, &v6, &priv, &pub, &psk, &expires, &enabled); err != nil {
			return List{}, fmt.Errorf("wg-easy database %s: %w", path, err)
		}
		ref := fmt.Sprintf("client %d", id)
		c, why := client(ref, name, pub, priv, psk.String, []string{v4, v6})
		if why == "" && expires.Valid && strings.TrimSpace(expires.String) != "" {
			t, err := parseTime(expires.String)
			if err != nil {
				why = err.Error()
			}
			c.ExpiresAt = &t
		}
		if why != "" {
			l.Skipped = append(l.Skipped, Skipped{Ref: ref, Name: c.Name, Reason: why})
			continue
		}
		c.Enabled = enabled
		l.Clients = append(l.Clients, c)
	}
	if err := rows.Err(); err != nil {
		return List{}, fmt.Errorf("wg-easy database %s: %w", path, err)
	}
	return l, nil
}
