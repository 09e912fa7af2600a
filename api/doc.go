// Package api is the REST layer: a chi router with one file per endpoint group. A handler decodes,
// validates the shape, calls one service method and encodes; business rules live in billing, dunning and
// billingkey. Every error becomes an RFC 9457 problem in one place (problem.go); cross-cutting concerns —
// bearer auth with roles, request ids, body limits, idempotency keys, If-Match, rate limits — are
// middleware or small helpers here. The OpenAPI document (openapi.json) is kept in step by a test.
package api
