package toss

// SetPageSize shrinks the transaction page so tests can cover paging with a few lines.
func SetPageSize(a *Adapter, n int) { a.pageSize = n }
