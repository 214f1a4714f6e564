package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"wgbot"
)

// NodeKeyState is where a server's node key stands.
type NodeKeyState struct {
	Key       string // the node's registered public key; "" none yet
	Rekey     bool   // the operator asked for a new key (servers rekey)
	SealedKey string // every peer is sealed to this key; Key once serve caught up
}

// NodeKeyState reads the server's node key state; a node checks it on
// every heartbeat for a requested rotation.
func (s *Store) NodeKeyState(ctx context.Context, serverID int64) (NodeKeyState, error) {
	var st NodeKeyState
	err := s.pool.QueryRow(ctx, `SELECT node_key, node_rekey, node_sealed_key FROM servers WHERE id = $1`, serverID).
		Scan(&st.Key, &st.Rekey, &st.SealedKey)
	if err != nil {
		return st, fmt.Errorf("read the node key of server %d: %w", serverID, err)
	}
	return st, nil
}

// RegisterNodeSealKey registers the node's public key on its server row,
// through register_node_key (the node's role may not write the column):
// allowed on a server with no node key, or after `servers rekey`; another
// key is refused as a conflict. changed is false if it was registered.
func (s *Store) RegisterNodeSealKey(ctx context.Context, serverID int64, key string) (changed bool, err error) {
	err = s.pool.QueryRow(ctx, `SELECT register_node_key($1, $2)`, serverID, key).Scan(&changed)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "WGK01": // register_node_key: another key, and no rotation asked for
			return false, wgbot.Errorf(wgbot.EConflict, "node_key_registered",
				"server %d has another node key registered: if this host's key file was lost or replaced, run `wgbot servers rekey` for it on the serve side", serverID)
		case "42501": // insufficient_privilege
			return false, fmt.Errorf("register the node key of server %d: %w (re-run deploy/node-role.sql after `wgbot migrate`)", serverID, err)
		}
	}
	if err != nil {
		return false, fmt.Errorf("register the node key of server %d: %w", serverID, err)
	}
	return changed, nil
}

// RequestNodeRekey asks the node of server name for a new key pair; it
// registers one on its next heartbeat (or start).
func (s *Store) RequestNodeRekey(ctx context.Context, name string) (wgbot.Server, NodeKeyState, error) {
	var st NodeKeyState
	var id int64
	err := s.pool.QueryRow(ctx, `UPDATE servers SET node_rekey = true, updated_at = now() WHERE name = $1
		RETURNING id, node_key, node_rekey, node_sealed_key`, name).Scan(&id, &st.Key, &st.Rekey, &st.SealedKey)
	if errors.Is(err, pgx.ErrNoRows) {
		_, err = s.ServerByName(ctx, name) // the not-found error that lists the servers
		return wgbot.Server{}, st, err
	}
	if err != nil {
		return wgbot.Server{}, st, fmt.Errorf("request a node key rotation for server %s: %w", name, err)
	}
	srv, err := s.Server(ctx, id)
	return srv, st, err
}

// NodeSealTarget is a server whose peers are not all sealed to its node key.
type NodeSealTarget struct {
	ServerID int64
	Key      string
}

// ServersToSeal lists the servers with a registered node key that not
// every peer is sealed to yet: newly registered or rotated keys, peers
// issued meanwhile, imported or moved.
func (s *Store) ServersToSeal(ctx context.Context) ([]NodeSealTarget, error) {
	rows, err := s.pool.Query(ctx, `SELECT id, node_key FROM servers WHERE node_key <> '' AND node_key <> node_sealed_key ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("find servers to seal: %w", err)
	}
	list, err := pgx.CollectRows(rows, pgx.RowToStructByPos[NodeSealTarget])
	if err != nil {
		return nil, fmt.Errorf("find servers to seal: %w", err)
	}
	return list, nil
}

// sealBatch is how many peers one sealing transaction takes: short
// transactions, so issuance on the server never waits long.
const sealBatch = 200

// SealNodePeers seals, in batches of one transaction each, the preshared
// key of every peer of the server (revoked ones too: nothing sealed to an
// old key stays behind) that is not sealed to key, with what seal returns.
// Each batch bumps the server's revision, which wakes its node: one whose
// reconcile stopped on a peer it could not open retries at once. Then the
// server is marked sealed; done is false if the key changed meanwhile or a
// peer was busy (the caller comes back).
func (s *Store) SealNodePeers(ctx context.Context, serverID int64, key string, seal func(SealedPeer) ([]byte, error)) (n int, done bool, err error) {
	for {
		batch := 0
		err := s.retryTx(ctx, func(tx pgx.Tx) error {
			rows, err := tx.Query(ctx, `SELECT `+peerColumns+` FROM peers p WHERE p.server_id = $1 AND p.psk_node_key IS DISTINCT FROM $2
				ORDER BY p.id LIMIT $3 FOR UPDATE SKIP LOCKED`, serverID, key, sealBatch)
			if err != nil {
				return err
			}
			peers, err := pgx.CollectRows(rows, scanSealedPeer)
			if err != nil || len(peers) == 0 {
				return err
			}
			for _, p := range peers {
				sealed, err := seal(p)
				if err != nil {
					return fmt.Errorf("peer %d: %w", p.ID, err)
				}
				if _, err := tx.Exec(ctx, `UPDATE peers SET psk_node_sealed = $2, psk_node_key = $3 WHERE id = $1`, p.ID, sealed, key); err != nil {
					return err
				}
			}
			batch = len(peers)
			_, err = bumpRevision(ctx, tx, serverID)
			return err
		})
		if err != nil {
			return n, false, fmt.Errorf("seal the preshared keys of server %d to its node key: %w", serverID, err)
		}
		n += batch
		if batch == 0 {
			break
		}
	}
	done, err = s.markNodeSealed(ctx, serverID, key)
	return n, done, err
}

// markNodeSealed records that every peer of the server is sealed to key,
// if it still is its node key and no peer lags. The server row is locked
// first: an issuance that read an older key holds it until its commit,
// and its peer is seen here.
func (s *Store) markNodeSealed(ctx context.Context, serverID int64, key string) (bool, error) {
	var done bool
	err := inTx(ctx, s.pool, func(tx pgx.Tx) error {
		var current string
		if err := tx.QueryRow(ctx, `SELECT node_key FROM servers WHERE id = $1 FOR UPDATE`, serverID).Scan(&current); err != nil {
			return err
		}
		if current != key {
			return nil
		}
		var lagging bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM peers WHERE server_id = $1 AND psk_node_key IS DISTINCT FROM $2)`,
			serverID, key).Scan(&lagging); err != nil || lagging {
			return err
		}
		done = true
		_, err := tx.Exec(ctx, `UPDATE servers SET node_sealed_key = $2 WHERE id = $1`, serverID, key)
		return err
	})
	if err != nil {
		return false, fmt.Errorf("mark server %d sealed to its node key: %w", serverID, err)
	}
	return done, nil
}
