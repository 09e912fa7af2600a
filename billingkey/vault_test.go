package billingkey_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/dunningworks/billing/billing"
	"github.com/dunningworks/billing/billingkey"
	"github.com/dunningworks/billing/clock"
	"github.com/dunningworks/billing/gateway"
	"github.com/dunningworks/billing/internal/apperr"
	"github.com/dunningworks/billing/internal/idem"
	"github.com/dunningworks/billing/internal/ids"
	"github.com/dunningworks/billing/internal/keyring"
	"github.com/dunningworks/billing/internal/page"
	"github.com/dunningworks/billing/internal/testdb"
)

// fakeGateway issues deterministic tokens; only IssueBillingKey is used by the vault.
type fakeGateway struct {
	gateway.Gateway
	mu  sync.Mutex
	err error
}

func (f *fakeGateway) Name() gateway.Name { return "fake" }

func (f *fakeGateway) IssueBillingKey(_ context.Context, customerKey, authKey string) (gateway.IssuedKey, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return gateway.IssuedKey{}, f.err
	}
	return gateway.IssuedKey{Token: gateway.NewBillingKeyToken(rawToken(customerKey, authKey)),
		Card: gateway.Card{Brand: "VISA", MaskedNumber: "4330-12**-****-123*"}}, nil
}

func (f *fakeGateway) fail(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.err = err
}

func rawToken(customerKey, authKey string) string { return "RAWTOKEN-" + customerKey + "-" + authKey }

type gateways map[string]gateway.Gateway

func (g gateways) Get(name string) (gateway.Gateway, bool) { gw, ok := g[name]; return gw, ok }

type bundle struct {
	pool  *pgxpool.Pool
	vault *billingkey.Vault
	gw    *fakeGateway
	clock *clock.Fixed
	logs  *syncBuffer
	// healed records the customers the heal hook ran for, and whether it ran inside a live transaction.
	mu      sync.Mutex
	healed  []string
	hookErr error
}

func (b *bundle) healedFor() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.healed...)
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func setup(t *testing.T, keys map[int][]byte) *bundle {
	t.Helper()
	if keys == nil {
		keys = map[int][]byte{1: randomKey(t)}
	}
	ring, err := keyring.New(keys)
	require.NoError(t, err)
	b := &bundle{pool: testdb.New(t), gw: &fakeGateway{}, clock: clock.NewFixed(time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)),
		logs: &syncBuffer{}}
	b.vault = billingkey.New(billingkey.Config{
		Pool: b.pool, Clock: b.clock, Gateways: gateways{"fake": b.gw}, KeyRing: ring,
		Log: slog.New(slog.NewJSONHandler(b.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		OnKeyRegistered: func(ctx context.Context, tx pgx.Tx, customerID string) error {
			// Prove the hook runs in the registering transaction: it sees the uncommitted key.
			var n int
			if err := tx.QueryRow(ctx, "SELECT count(*) FROM billing_keys WHERE customer_id = $1", customerID).Scan(&n); err != nil {
				return err
			}
			b.mu.Lock()
			defer b.mu.Unlock()
			if b.hookErr != nil {
				return b.hookErr
			}
			b.healed = append(b.healed, fmt.Sprintf("%s:%d", customerID, n))
			return nil
		},
	})
	return b
}

func (b *bundle) customer(t *testing.T) string {
	t.Helper()
	id := ids.New("cus")
	_, err := b.pool.Exec(context.Background(), "INSERT INTO customers (id, external_id, email, name, created_at) VALUES ($1, $1, 'a@b.co', 'n', now())", id)
	require.NoError(t, err)
	return id
}

func requireKind(t *testing.T, err error, kind apperr.Kind, code string) *apperr.Error {
	t.Helper()
	e, ok := apperr.As(err)
	require.True(t, ok, "want *apperr.Error, got %v", err)
	require.Equal(t, kind, e.Kind, "%v", err)
	require.Equal(t, code, e.Code, "%v", err)
	return e
}

func TestIssueStoresEncryptedAndFirstKeyIsDefault(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, nil)
	cus := b.customer(t)

	k1, err := b.vault.Issue(ctx, cus, "fake", "auth-1", "ck-"+cus, idem.Request{})
	require.NoError(t, err)
	require.Regexp(t, `^bk_[0-9a-z]{20}$`, k1.ID)
	require.True(t, k1.IsDefault)
	require.Equal(t, billingkey.StatusActive, k1.Status)
	require.Equal(t, billingkey.Card{Brand: "VISA", MaskedNumber: "4330-12**-****-123*"}, k1.Card)
	require.Equal(t, b.clock.Now(), k1.CreatedAt)

	b.clock.Advance(time.Second) // list order is (created_at, id), and ids are random
	k2, err := b.vault.Issue(ctx, cus, "fake", "auth-2", "ck-"+cus, idem.Request{})
	require.NoError(t, err)
	require.False(t, k2.IsDefault)
	require.Equal(t, []string{cus + ":1", cus + ":2"}, b.healedFor())

	var ct []byte
	var version int
	require.NoError(t, b.pool.QueryRow(ctx, "SELECT ciphertext, key_version FROM billing_keys WHERE id = $1", k1.ID).Scan(&ct, &version))
	require.Equal(t, 1, version)
	require.NotContains(t, string(ct), rawToken("ck-"+cus, "auth-1"))

	ref, err := b.vault.ChargeableKey(ctx, b.pool, cus)
	require.NoError(t, err)
	require.Equal(t, billing.KeyRef{ID: k1.ID, Gateway: "fake", CustomerKey: "ck-" + cus}, ref)
	tok, _, err := b.vault.Token(ctx, b.pool, k1.ID)
	require.NoError(t, err)
	require.Equal(t, rawToken("ck-"+cus, "auth-1"), tok.Reveal())

	logs := b.logs.String()
	require.Contains(t, logs, "billing key decrypted for charge")
	require.NotContains(t, logs, "RAWTOKEN")
	require.NotContains(t, logs, "auth-1", "the auth key is not logged either")

	list, err := b.vault.List(ctx, cus, page.Request{Limit: 1})
	require.NoError(t, err)
	require.Equal(t, []billingkey.Key{k1}, list.Data)
	require.NotNil(t, list.NextCursor)
	list, err = b.vault.List(ctx, cus, page.Request{Limit: 1, AfterTime: k1.CreatedAt, AfterID: k1.ID})
	require.NoError(t, err)
	require.Equal(t, []billingkey.Key{k2}, list.Data)
	require.Nil(t, list.NextCursor)

	_, err = b.vault.List(ctx, "cus_missing", page.Request{Limit: 10})
	requireKind(t, err, apperr.KindNotFound, "customer_not_found")
}

func TestIssueValidatesBeforeCallingTheGateway(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, nil)
	cus := b.customer(t)

	_, err := b.vault.Issue(ctx, cus, "stripe", "a", "c", idem.Request{})
	e := requireKind(t, err, apperr.KindValidation, "validation_failed")
	require.Equal(t, "gateway", e.Fields[0].Field)

	_, err = b.vault.Issue(ctx, cus, "", "", "", idem.Request{})
	e = requireKind(t, err, apperr.KindValidation, "validation_failed")
	require.Len(t, e.Fields, 3)

	_, err = b.vault.Issue(ctx, "cus_missing", "fake", "auth", "ck", idem.Request{})
	requireKind(t, err, apperr.KindNotFound, "customer_not_found")
}

func TestIssueMapsGatewayFailures(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, nil)
	cus := b.customer(t)

	b.gw.fail(&gateway.DeclineError{Code: "INVALID_CARD_NUMBER", Message: "bad card"})
	_, err := b.vault.Issue(ctx, cus, "fake", "auth", "ck", idem.Request{})
	e := requireKind(t, err, apperr.KindValidation, "auth_key_rejected")
	require.Equal(t, "INVALID_CARD_NUMBER", e.Extra["gateway_code"])

	b.gw.fail(&gateway.TryLaterError{Gateway: "fake", RetryAfter: 1500 * time.Millisecond, Cause: "rate limited"})
	_, err = b.vault.Issue(ctx, cus, "fake", "auth", "ck", idem.Request{})
	e = requireKind(t, err, apperr.KindUnavailable, "gateway_unavailable")
	require.Equal(t, 2, e.Extra["retry_after_seconds"])

	b.gw.fail(errors.New("connection reset by peer"))
	_, err = b.vault.Issue(ctx, cus, "fake", "auth", "ck", idem.Request{})
	requireKind(t, err, apperr.KindGateway, "gateway_unavailable")

	var n int
	require.NoError(t, b.pool.QueryRow(ctx, "SELECT count(*) FROM billing_keys").Scan(&n))
	require.Zero(t, n)
	require.Empty(t, b.healedFor())
}

func TestHookFailureRollsBackTheKey(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, nil)
	cus := b.customer(t)
	b.hookErr = errors.New("billing is down")

	_, err := b.vault.Issue(ctx, cus, "fake", "auth", "ck", idem.Request{})
	require.ErrorIs(t, err, b.hookErr)
	var n int
	require.NoError(t, b.pool.QueryRow(ctx, "SELECT count(*) FROM billing_keys").Scan(&n))
	require.Zero(t, n)
}

func TestConcurrentFirstKeysMakeExactlyOneDefault(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, nil)
	cus := b.customer(t)

	const n = 8
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() { _, errs[i] = b.vault.Issue(ctx, cus, "fake", fmt.Sprintf("auth-%d", i), "ck", idem.Request{}) })
	}
	wg.Wait()
	for _, err := range errs {
		require.NoError(t, err)
	}
	var keys, defaults int
	require.NoError(t, b.pool.QueryRow(ctx, "SELECT count(*), count(*) FILTER (WHERE is_default) FROM billing_keys WHERE customer_id = $1", cus).Scan(&keys, &defaults))
	require.Equal(t, n, keys)
	require.Equal(t, 1, defaults)
}

func TestCiphertextMovedToAnotherRowDoesNotDecrypt(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, nil)
	alice, mallory := b.customer(t), b.customer(t)
	ka, err := b.vault.Issue(ctx, alice, "fake", "auth-a", "ck-a", idem.Request{})
	require.NoError(t, err)
	km, err := b.vault.Issue(ctx, mallory, "fake", "auth-m", "ck-m", idem.Request{})
	require.NoError(t, err)

	// Someone with write access to the table pastes Alice's ciphertext onto Mallory's key.
	_, err = b.pool.Exec(ctx, "UPDATE billing_keys SET ciphertext = (SELECT ciphertext FROM billing_keys WHERE id = $1) WHERE id = $2", ka.ID, km.ID)
	require.NoError(t, err)
	_, _, err = b.vault.Token(ctx, b.pool, km.ID)
	require.ErrorIs(t, err, keyring.ErrDecrypt)

	// Alice's own row still works.
	tok, _, err := b.vault.Token(ctx, b.pool, ka.ID)
	require.NoError(t, err)
	require.Equal(t, rawToken("ck-a", "auth-a"), tok.Reveal())

	// Moving the whole row to another customer breaks it too.
	_, err = b.pool.Exec(ctx, "UPDATE billing_keys SET customer_id = $1, is_default = false WHERE id = $2", mallory, ka.ID)
	require.NoError(t, err)
	_, _, err = b.vault.Token(ctx, b.pool, ka.ID)
	require.ErrorIs(t, err, keyring.ErrDecrypt)
}

func TestHardDeclineStopsChargesAndANewKeyHeals(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, nil)
	cus := b.customer(t)
	k1, err := b.vault.Issue(ctx, cus, "fake", "auth-1", "ck", idem.Request{})
	require.NoError(t, err)

	at := b.clock.Now().Add(time.Hour)
	require.NoError(t, b.vault.MarkHardDeclined(ctx, b.pool, k1.ID, "INVALID_STOPPED_CARD", at))
	require.NoError(t, b.vault.MarkHardDeclined(ctx, b.pool, k1.ID, "LATER_CODE", at.Add(time.Hour)), "idempotent")
	requireKind(t, b.vault.MarkHardDeclined(ctx, b.pool, "bk_missing", "X", at), apperr.KindNotFound, "billing_key_not_found")

	_, err = b.vault.ChargeableKey(ctx, b.pool, cus)
	require.ErrorIs(t, err, billing.ErrNoChargeableKey)
	got, err := b.vault.Get(ctx, cus, k1.ID)
	require.NoError(t, err)
	require.Equal(t, at, *got.HardDeclinedAt)
	require.Equal(t, "INVALID_STOPPED_CARD", *got.HardDeclineCode)

	// Still the default, but dead: asking to make it default is refused rather than silently accepted.
	_, err = b.vault.MakeDefault(ctx, cus, k1.ID)
	requireKind(t, err, apperr.KindConflict, "billing_key_hard_declined")

	// A new card takes over the default from the dead one.
	k2, err := b.vault.Issue(ctx, cus, "fake", "auth-2", "ck", idem.Request{})
	require.NoError(t, err)
	require.True(t, k2.IsDefault)
	ref, err := b.vault.ChargeableKey(ctx, b.pool, cus)
	require.NoError(t, err)
	require.Equal(t, k2.ID, ref.ID)

	// And the dead one cannot be made default again.
	_, err = b.vault.MakeDefault(ctx, cus, k1.ID)
	requireKind(t, err, apperr.KindConflict, "billing_key_hard_declined")
	got, err = b.vault.Get(ctx, cus, k1.ID)
	require.NoError(t, err)
	require.False(t, got.IsDefault)
}

func TestMakeDefaultAndRevoke(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, nil)
	cus, other := b.customer(t), b.customer(t)
	k1, err := b.vault.Issue(ctx, cus, "fake", "auth-1", "ck", idem.Request{})
	require.NoError(t, err)
	k2, err := b.vault.Issue(ctx, cus, "fake", "auth-2", "ck", idem.Request{})
	require.NoError(t, err)
	healed := len(b.healedFor())

	got, err := b.vault.MakeDefault(ctx, cus, k2.ID)
	require.NoError(t, err)
	require.True(t, got.IsDefault)
	require.Len(t, b.healedFor(), healed+1, "a new default heals")
	k1now, err := b.vault.Get(ctx, cus, k1.ID)
	require.NoError(t, err)
	require.False(t, k1now.IsDefault)

	_, err = b.vault.MakeDefault(ctx, other, k2.ID)
	requireKind(t, err, apperr.KindNotFound, "billing_key_not_found")
	_, err = b.vault.Revoke(ctx, other, k2.ID)
	requireKind(t, err, apperr.KindNotFound, "billing_key_not_found")
	_, err = b.vault.Get(ctx, other, k2.ID)
	requireKind(t, err, apperr.KindNotFound, "billing_key_not_found")
	_, err = b.vault.Revoke(ctx, "cus_missing", k2.ID)
	requireKind(t, err, apperr.KindNotFound, "customer_not_found")

	b.clock.Advance(time.Minute)
	revoked, err := b.vault.Revoke(ctx, cus, k2.ID)
	require.NoError(t, err)
	require.Equal(t, billingkey.StatusRevoked, revoked.Status)
	require.False(t, revoked.IsDefault)
	require.Equal(t, b.clock.Now(), *revoked.RevokedAt)

	// Revoking the default leaves no default; nothing is charged until the merchant picks one.
	_, err = b.vault.ChargeableKey(ctx, b.pool, cus)
	require.ErrorIs(t, err, billing.ErrNoChargeableKey)
	_, _, err = b.vault.Token(ctx, b.pool, k2.ID)
	require.ErrorIs(t, err, billing.ErrNoChargeableKey)

	b.clock.Advance(time.Minute)
	again, err := b.vault.Revoke(ctx, cus, k2.ID)
	require.NoError(t, err)
	require.Equal(t, revoked, again, "revoking twice changes nothing")

	_, err = b.vault.MakeDefault(ctx, cus, k2.ID)
	e := requireKind(t, err, apperr.KindConflict, "billing_key_revoked")
	require.Equal(t, "revoked", e.Extra["state"])

	got, err = b.vault.MakeDefault(ctx, cus, k1.ID)
	require.NoError(t, err)
	require.True(t, got.IsDefault)
	ref, err := b.vault.ChargeableKey(ctx, b.pool, cus)
	require.NoError(t, err)
	require.Equal(t, k1.ID, ref.ID)
}

func TestRotateReencryptsUnderTheNewestVersion(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	k1, k2 := randomKey(t), randomKey(t)
	b := setup(t, map[int][]byte{1: k1})

	type issued struct{ id, token string }
	var keys []issued
	for i := range 7 {
		cus := b.customer(t)
		k, err := b.vault.Issue(ctx, cus, "fake", fmt.Sprintf("auth-%d", i), "ck-"+cus, idem.Request{})
		require.NoError(t, err)
		keys = append(keys, issued{k.ID, rawToken("ck-"+cus, fmt.Sprintf("auth-%d", i))})
	}
	before := map[string][]byte{}
	rows, err := b.pool.Query(ctx, "SELECT id, ciphertext FROM billing_keys")
	require.NoError(t, err)
	for rows.Next() {
		var id string
		var ct []byte
		require.NoError(t, rows.Scan(&id, &ct))
		before[id] = ct
	}
	require.NoError(t, rows.Err())

	n, err := b.vault.Rotate(ctx, 10)
	require.NoError(t, err)
	require.Zero(t, n, "nothing to rotate while version 1 is current")

	ring2, err := keyring.New(map[int][]byte{1: k1, 2: k2})
	require.NoError(t, err)
	v2 := billingkey.New(billingkey.Config{Pool: b.pool, Clock: b.clock, KeyRing: ring2, Log: slog.New(slog.DiscardHandler)})
	n, err = v2.Rotate(ctx, 3) // three batches: 3, 3, 1
	require.NoError(t, err)
	require.Equal(t, 7, n)

	var stale int
	require.NoError(t, b.pool.QueryRow(ctx, "SELECT count(*) FROM billing_keys WHERE key_version <> 2").Scan(&stale))
	require.Zero(t, stale)

	// A ring holding only version 2 reads every row: version 1 could now be retired.
	only2, err := keyring.New(map[int][]byte{2: k2})
	require.NoError(t, err)
	v3 := billingkey.New(billingkey.Config{Pool: b.pool, Clock: b.clock, KeyRing: only2, Log: slog.New(slog.DiscardHandler)})
	for _, k := range keys {
		tok, _, err := v3.Token(ctx, b.pool, k.id)
		require.NoError(t, err)
		require.Equal(t, k.token, tok.Reveal())
		var ct []byte
		require.NoError(t, b.pool.QueryRow(ctx, "SELECT ciphertext FROM billing_keys WHERE id = $1", k.id).Scan(&ct))
		require.NotEqual(t, before[k.id], ct)
	}
	// The old ring can no longer read them.
	_, _, err = b.vault.Token(ctx, b.pool, keys[0].id)
	require.ErrorIs(t, err, keyring.ErrUnknownKeyVersion)

	n, err = v2.Rotate(ctx, 3)
	require.NoError(t, err)
	require.Zero(t, n)
}

func TestRotateStopsOnACorruptRow(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	k1 := randomKey(t)
	b := setup(t, map[int][]byte{1: k1})
	cus := b.customer(t)
	k, err := b.vault.Issue(ctx, cus, "fake", "auth", "ck", idem.Request{})
	require.NoError(t, err)
	_, err = b.pool.Exec(ctx, "UPDATE billing_keys SET ciphertext = set_byte(ciphertext, 20, get_byte(ciphertext, 20) # 1) WHERE id = $1", k.ID)
	require.NoError(t, err)

	ring2, err := keyring.New(map[int][]byte{1: k1, 2: randomKey(t)})
	require.NoError(t, err)
	_, err = billingkey.New(billingkey.Config{Pool: b.pool, Clock: b.clock, KeyRing: ring2, Log: slog.New(slog.DiscardHandler)}).Rotate(ctx, 10)
	require.ErrorIs(t, err, keyring.ErrDecrypt)
	require.ErrorContains(t, err, k.ID)
}

func randomKey(t *testing.T) []byte {
	t.Helper()
	k := make([]byte, keyring.KeySize)
	_, err := rand.Read(k)
	require.NoError(t, err)
	return k
}
