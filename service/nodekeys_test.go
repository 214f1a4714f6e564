package service_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"wgbot"
	"wgbot/secret"
)

// sealedRow is a peer's preshared key as the database holds it: sealed
// with the master key, and to a node key.
type sealedRow struct {
	id  int64
	sec wgbot.PeerSecrets
}

func sealedRows(t testing.TB, e *env) []sealedRow {
	t.Helper()
	rows, err := e.pool.Query(context.Background(), `SELECT id, public_key, preshared_key_enc, key_id, psk_node_sealed, coalesce(psk_node_key, '')
		FROM peers ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []sealedRow
	for rows.Next() {
		var r sealedRow
		if err := rows.Scan(&r.id, &r.sec.PublicKey, &r.sec.PresharedSealed, &r.sec.KeyID, &r.sec.NodeSealed, &r.sec.NodeKey); err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// checkSealedTo asserts that every peer's preshared key is sealed to key
// and opens with it to the master-sealed one, and that none opens with
// any of old: the bytes are tried, whatever key the row names.
func checkSealedTo(t testing.TB, e *env, key secret.NodeKey, old ...secret.NodeKey) {
	t.Helper()
	master, err := secret.NewKeyring(testKey)
	if err != nil {
		t.Fatal(err)
	}
	rows := sealedRows(t, e)
	if len(rows) == 0 {
		t.Fatal("no peers")
	}
	for _, r := range rows {
		want, err := master.OpenPresharedKey(r.sec)
		if err != nil {
			t.Fatal(err)
		}
		if r.sec.NodeKey != key.PublicKey() {
			t.Fatalf("peer %d is sealed to %q, want the node key %s", r.id, r.sec.NodeKey, key.PublicKey())
		}
		if got, err := secret.NewNodeKeys(key).OpenPresharedKey(r.sec); err != nil || got != want {
			t.Fatalf("peer %d: the node key opens %v, %v; want the master-sealed preshared key", r.id, got, err)
		}
		for _, o := range old {
			forged := r.sec
			forged.NodeKey = o.PublicKey()
			if _, err := secret.NewNodeKeys(o).OpenPresharedKey(forged); err == nil {
				t.Fatalf("peer %d: the old node key %s still opens its preshared key", r.id, o.PublicKey())
			}
		}
	}
}

func pskOf(t testing.TB, conf []byte) wgtypes.Key {
	t.Helper()
	for _, l := range strings.Split(string(conf), "\n") {
		if v, ok := strings.CutPrefix(l, "PresharedKey = "); ok {
			k, err := wgtypes.ParseKey(strings.TrimSpace(v))
			if err != nil {
				t.Fatal(err)
			}
			return k
		}
	}
	t.Fatalf("no PresharedKey in\n%s", conf)
	return wgtypes.Key{}
}

// The preshared keys of a server's peers are sealed to its node's key:
// those issued before the node registered by the sealing job, those
// issued afterwards in the issuing transaction. Another key is refused
// unless the operator asked for a rotation; after one, every peer (a
// revoked one too) is re-sealed, the revision moves so the node wakes,
// and the old key opens nothing. A peer written with a stale seal marks
// its server for the job.
func TestNodeKeySealing(t *testing.T) {
	e := setup(t, "10.40.0.0/24", nil)
	ctx := context.Background()
	srv, err := e.store.ServerByName(ctx, "main")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.IssueTrial(ctx, e.user(t, 1)); err != nil {
		t.Fatal(err)
	}
	if n := count(t, e.pool, `SELECT count(*) FROM peers WHERE psk_node_key IS NULL AND psk_node_sealed IS NULL`); n != 1 {
		t.Fatalf("%d unsealed peers before any node key, want 1", n)
	}
	if n, err := e.svc.SealNodeKeys(ctx); err != nil || n != 0 {
		t.Fatalf("sealing with no node key: %d %v", n, err)
	}

	first, _ := secret.GenerateNodeKey()
	if changed, err := e.store.RegisterNodeSealKey(ctx, srv.ID, first.PublicKey()); err != nil || !changed {
		t.Fatalf("first registration: %v %v", changed, err)
	}
	if changed, err := e.store.RegisterNodeSealKey(ctx, srv.ID, first.PublicKey()); err != nil || changed {
		t.Fatalf("the same key again: %v %v", changed, err)
	}
	if n, err := e.svc.SealNodeKeys(ctx); err != nil || n != 1 {
		t.Fatalf("sealed %d (%v), want the 1 peer issued before the key", n, err)
	}
	d, err := e.svc.IssueTrial(ctx, e.user(t, 2))
	if err != nil {
		t.Fatal(err)
	}
	// Sealed by the issuance itself: no job has run since.
	checkSealedTo(t, e, first)
	for _, r := range sealedRows(t, e) {
		if r.id == d.Peer.ID {
			if got, _ := secret.NewNodeKeys(first).OpenPresharedKey(r.sec); got != pskOf(t, d.Config) {
				t.Fatal("the node opens another preshared key than the issued config's")
			}
		}
	}
	if targets, err := e.store.ServersToSeal(ctx); err != nil || len(targets) != 0 {
		t.Fatalf("servers to seal after an issuance sealed to the current key: %v %v", targets, err)
	}

	second, _ := secret.GenerateNodeKey()
	if _, err := e.store.RegisterNodeSealKey(ctx, srv.ID, second.PublicKey()); wgbot.ErrorCode(err) != wgbot.EConflict {
		t.Fatalf("another key with no rotation asked: %v, want a conflict", err)
	}
	if st, _ := e.store.NodeKeyState(ctx, srv.ID); st.Key != first.PublicKey() {
		t.Fatal("a refused key was registered")
	}
	if _, err := e.store.RegisterNodeSealKey(ctx, srv.ID, "bm90IGEga2V5"); err == nil {
		t.Fatal("a malformed key was registered")
	}

	if err := e.svc.Revoke(ctx, e.user(t, 1)); err != nil {
		t.Fatal(err)
	}
	if _, st, err := e.store.RequestNodeRekey(ctx, "main"); err != nil || !st.Rekey {
		t.Fatalf("rekey request: %v %v", st, err)
	}
	if _, _, err := e.store.RequestNodeRekey(ctx, "nowhere"); wgbot.ErrorCode(err) != wgbot.ENotFound {
		t.Fatalf("rekey of an unknown server: %v", err)
	}
	if _, err := e.store.RegisterNodeSealKey(ctx, srv.ID, second.PublicKey()); err != nil {
		t.Fatal(err)
	}
	before, _ := e.store.Revision(ctx, srv.ID)
	if n, err := e.svc.SealNodeKeys(ctx); err != nil || n != 2 {
		t.Fatalf("re-sealed %d (%v), want both peers, the revoked one too", n, err)
	}
	after, _ := e.store.Revision(ctx, srv.ID)
	if after.Revision <= before.Revision {
		t.Fatal("re-sealing did not move the revision: the node is not woken")
	}
	checkSealedTo(t, e, second, first)
	if st, _ := e.store.NodeKeyState(ctx, srv.ID); st.Rekey || st.SealedKey != second.PublicKey() {
		t.Fatalf("after the rotation: %+v", st)
	}

	// A write that left a peer sealed to an older key (as an issuance
	// that read the key just before a rotation would) is caught.
	mustExec(t, e.pool, `UPDATE peers SET psk_node_key = $1 WHERE id = $2`, first.PublicKey(), d.Peer.ID)
	if targets, err := e.store.ServersToSeal(ctx); err != nil || len(targets) != 1 || targets[0].Key != second.PublicKey() {
		t.Fatalf("servers to seal after a stale write: %v %v", targets, err)
	}
	if n, err := e.svc.SealNodeKeys(ctx); err != nil || n != 1 {
		t.Fatalf("re-sealed %d (%v), want the stale one", n, err)
	}
	checkSealedTo(t, e, second, first)
}

// Trials issued by several processes and many goroutines while the node
// key is registered and then rotated, with several processes sealing at
// once: in the end every peer is sealed to the new key, each exactly to
// its own preshared key, and the old key opens none.
func TestNodeKeySealingConcurrent(t *testing.T) {
	e := setup(t, "10.41.0.0/20", nil)
	ctx := context.Background()
	srv, err := e.store.ServerByName(ctx, "main")
	if err != nil {
		t.Fatal(err)
	}
	first, _ := secret.GenerateNodeKey()
	second, _ := secret.GenerateNodeKey()
	childEnv := []string{"CHILD_DB=" + e.url, "CHILD_SUBNET=10.41.0.0/20"}
	issuers := startChildren(t, 2, "trials", append(childEnv, "CHILD_USERS=150")...)
	sealers := startChildren(t, 2, "seal-node-keys", append(childEnv, "CHILD_SEAL_FOR=4s")...)
	var wg sync.WaitGroup
	for g := range 4 { // and goroutines sealing here, and issuing
		wg.Add(2)
		go func() {
			defer wg.Done()
			for range 20 {
				if _, err := e.svc.SealNodeKeys(ctx); err != nil {
					t.Error(err)
				}
				time.Sleep(50 * time.Millisecond)
			}
		}()
		go func() {
			defer wg.Done()
			for i := range 20 {
				u, err := e.svc.Register(ctx, wgbot.User{TelegramID: int64(5000 + g*100 + i)}, "")
				if err == nil {
					_, err = e.svc.IssueTrial(ctx, u)
				}
				if err != nil {
					t.Error(err)
				}
			}
		}()
	}
	time.Sleep(300 * time.Millisecond)
	if _, err := e.store.RegisterNodeSealKey(ctx, srv.ID, first.PublicKey()); err != nil {
		t.Fatal(err)
	}
	time.Sleep(700 * time.Millisecond)
	if _, _, err := e.store.RequestNodeRekey(ctx, "main"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.RegisterNodeSealKey(ctx, srv.ID, second.PublicKey()); err != nil {
		t.Fatal(err)
	}
	waitAll(t, issuers)
	wg.Wait()
	waitAll(t, sealers)
	if _, err := e.svc.SealNodeKeys(ctx); err != nil {
		t.Fatal(err)
	}
	if n := count(t, e.pool, `SELECT count(*) FROM peers`); n != 2*150+4*20 {
		t.Fatalf("%d peers, want %d", n, 2*150+4*20)
	}
	checkSealedTo(t, e, second, first)
	if targets, err := e.store.ServersToSeal(ctx); err != nil || len(targets) != 0 {
		t.Fatalf("still to seal: %v %v", targets, err)
	}
}

// runNodeKeyChild is a child process's part in TestNodeKeySealingConcurrent:
// a serve process's sealing job, run in a loop for a while.
func runNodeKeyChild(ctx context.Context, role string) (bool, error) {
	if role != "seal-node-keys" {
		return false, nil
	}
	e, err := newEnv(ctx, os.Getenv("CHILD_DB"), os.Getenv("CHILD_SUBNET"), nil, storeSetup{})
	if err != nil {
		return true, err
	}
	defer e.pool.Close()
	d, err := time.ParseDuration(os.Getenv("CHILD_SEAL_FOR"))
	if err != nil {
		return true, err
	}
	sealed := 0
	for end := time.Now().Add(d); time.Now().Before(end); {
		n, err := e.svc.SealNodeKeys(ctx)
		if err != nil {
			return true, err
		}
		sealed += n
		time.Sleep(20 * time.Millisecond)
	}
	fmt.Println("sealed " + strconv.Itoa(sealed))
	return true, nil
}
