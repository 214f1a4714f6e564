// Package yookassatest runs an in-process emulator of the YooKassa API v3 that
// speaks its real wire format: payments, refunds, basic auth and
// idempotence keys, plus controls to settle payments, inject faults and send
// notifications the way YooKassa does.
//
// Tests use it in place of the unreachable real service; a sandbox can use
// its checkout page (GET /checkout/{id}) to pay or cancel by hand.
package yookassatest
