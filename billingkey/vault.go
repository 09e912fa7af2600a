package billingkey

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/dunningworks/billing/billing"
	"github.com/dunningworks/billing/clock"
	"github.com/dunningworks/billing/gateway"
	"github.com/dunningworks/billing/internal/apperr"
	"github.com/dunningworks/billing/internal/dbx"
	"github.com/dunningworks/billing/internal/keyring"
	"github.com/dunningworks/billing/internal/store"
)

// Gateways finds an enabled gateway by name (app.Gateways implements it).
type Gateways interface {
	Get(name string) (gateway.Gateway, bool)
}

// KeyRegisteredFunc runs inside the transaction that registered a key for a customer or made one their
// default. Billing uses it to retry the customer's open invoices at once (a new key heals dunning); an
// error rolls the registration back.
type KeyRegisteredFunc func(ctx context.Context, tx pgx.Tx, customerID string) error

// Config is what a Vault is built from.
type Config struct {
	Pool     *pgxpool.Pool
	Clock    clock.Clock
	Gateways Gateways
	KeyRing  *keyring.Ring
	Log      *slog.Logger
	// OnKeyRegistered is the heal hook; nil means nothing reacts to new keys.
	OnKeyRegistered KeyRegisteredFunc
	// Delinquent reports whether the customer has a failed invoice open; a new key then becomes the
	// default. Nil means never.
	Delinquent func(ctx context.Context, tx pgx.Tx, customerID string) (bool, error)
	// IssueTimeout bounds the gateway call that issues a key (default 30s); the adapter has its own,
	// usually shorter, per-request timeout.
	IssueTimeout time.Duration
}

// Vault stores billing keys encrypted and hands their tokens out for charges only.
type Vault struct {
	pool         *pgxpool.Pool
	clock        clock.Clock
	gateways     Gateways
	ring         *keyring.Ring
	log          *slog.Logger
	onRegistered KeyRegisteredFunc
	delinquent   func(ctx context.Context, tx pgx.Tx, customerID string) (bool, error)
	issueTimeout time.Duration
	deletions    DeletionQueue
}

// New builds a Vault. Pool, Clock and KeyRing are required.
func New(c Config) *Vault {
	if c.Pool == nil || c.Clock == nil || c.KeyRing == nil {
		panic("billingkey.New: Pool, Clock and KeyRing are required")
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
	if c.IssueTimeout <= 0 {
		c.IssueTimeout = 30 * time.Second
	}
	return &Vault{pool: c.Pool, clock: c.Clock, gateways: c.Gateways, ring: c.KeyRing, log: c.Log,
		onRegistered: c.OnKeyRegistered, issueTimeout: c.IssueTimeout, delinquent: c.Delinquent}
}

// SetOnKeyRegistered installs the heal hook after construction (billing may be built after the vault).
func (v *Vault) SetOnKeyRegistered(f KeyRegisteredFunc) { v.onRegistered = f }

// KeyRing is the vault's key ring, for other secrets that share it (webhook endpoint signing secrets).
func (v *Vault) KeyRing() *keyring.Ring { return v.ring }

// Statuses of a billing key.
const (
	StatusActive  = "active"
	StatusRevoked = "revoked"
)

// Key is what may be shown about a billing key: never the token, never its ciphertext.
// GatewayDeletedAt is set once the gateway confirmed the deletion of a revoked key (its ciphertext is then
// destroyed); a revoked key without it is still to be deleted there.
type Key struct {
	ID         string `json:"id"`
	CustomerID string `json:"customer_id"`
	Gateway    string `json:"gateway"`
	Card       Card   `json:"card"`
	IsDefault  bool   `json:"is_default"`
	// IsBackup marks the customer's backup card, charged once per invoice when the dunning policy allows.
	IsBackup bool   `json:"is_backup"`
	Status   string `json:"status"`
	// HardDeclinedAt is set once a charge on the key was hard-declined: it is not charged again.
	HardDeclinedAt   *time.Time `json:"hard_declined_at"`
	HardDeclineCode  *string    `json:"hard_decline_code"`
	CreatedAt        time.Time  `json:"created_at"`
	RevokedAt        *time.Time `json:"revoked_at"`
	GatewayDeletedAt *time.Time `json:"gateway_deleted_at"`
}

// Card is the card's display data, as the gateway reported it at issuance.
type Card struct {
	Brand        string `json:"brand"`
	MaskedNumber string `json:"masked_number"`
}

func keyView(r store.BillingKey) Key {
	return Key{ID: r.ID, CustomerID: r.CustomerID, Gateway: r.Gateway,
		Card:      Card{Brand: r.CardBrand, MaskedNumber: r.MaskedNumber},
		IsDefault: r.IsDefault, IsBackup: r.IsBackup && r.Status == StatusActive, Status: r.Status, HardDeclinedAt: utcPtr(r.HardDeclinedAt),
		HardDeclineCode: r.HardDeclineCode, CreatedAt: r.CreatedAt.UTC(), RevokedAt: utcPtr(r.RevokedAt),
		GatewayDeletedAt: utcPtr(r.GatewayDeletedAt)}
}

func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

// binding is the additional data of a billing key's ciphertext: the row it belongs to.
func binding(keyID, customerID string) []string { return []string{"billing_key", keyID, customerID} }

func (v *Vault) q(db dbx.DBTX) *store.Queries { return store.New(db) }

func (v *Vault) inTx(ctx context.Context, f func(tx pgx.Tx) error) error {
	return dbx.InTx(ctx, v.pool, f)
}

// lockCustomer serializes every change to one customer's keys (default flips race otherwise). The
// customer is billing's: billing takes the lock.
func (v *Vault) lockCustomer(ctx context.Context, tx pgx.Tx, customerID string) error {
	return billing.LockCustomer(ctx, tx, customerID)
}

func (v *Vault) requireCustomer(ctx context.Context, customerID string) error {
	return billing.RequireCustomer(ctx, v.pool, customerID)
}

// customerKeyForUpdate loads a key of this customer; a key of another customer is not found, so ids cannot
// be probed across customers.
func (v *Vault) customerKeyForUpdate(ctx context.Context, tx pgx.Tx, customerID, keyID string) (store.BillingKey, error) {
	row, err := v.q(tx).CustomerKeyForUpdate(ctx, store.CustomerKeyForUpdateParams{ID: keyID, CustomerID: customerID})
	if errors.Is(err, pgx.ErrNoRows) {
		return row, apperr.NotFound("billing_key", keyID)
	}
	if err != nil {
		return row, fmt.Errorf("load billing key %s: %w", keyID, err)
	}
	return row, nil
}

func (v *Vault) registered(ctx context.Context, tx pgx.Tx, customerID string) error {
	if v.onRegistered == nil {
		return nil
	}
	if err := v.onRegistered(ctx, tx, customerID); err != nil {
		return fmt.Errorf("key registered hook for customer %s: %w", customerID, err)
	}
	return nil
}

// takesLiveCurrencies refuses (422 currency_not_supported) letting a key of the named gateway pay the
// customer's subscriptions when the gateway does not charge in one of their currencies: every charge of
// it would be refused. A gateway that is not enabled is not judged (its keys fail for that reason). The
// caller holds the customer lock, which subscribing takes too.
func (v *Vault) takesLiveCurrencies(ctx context.Context, db dbx.DBTX, gatewayName, customerID, field string) error {
	if v.gateways == nil {
		return nil
	}
	gw, ok := v.gateways.Get(gatewayName)
	if !ok {
		return nil
	}
	return billing.TakesLiveCurrencies(ctx, db, gw, customerID, field)
}
