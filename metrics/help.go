package metrics

// The help text of each metric, by Stats field name. A field without an
// entry still becomes a metric; TestEveryFieldHasHelp keeps the tables
// complete.
var cacheHelp = map[string]string{
	"Number":            "Sessions cached now (SSL_CTX_sess_number).",
	"Connect":           "Client handshakes started (SSL_CTX_sess_connect).",
	"ConnectGood":       "Client handshakes completed (SSL_CTX_sess_connect_good).",
	"Accept":            "Server handshakes started (SSL_CTX_sess_accept).",
	"AcceptGood":        "Server handshakes completed (SSL_CTX_sess_accept_good).",
	"Hits":              "Lookups that returned a session to resume (SSL_CTX_sess_hits).",
	"CbHits":            "Resumable sessions the get hook returned (SSL_CTX_sess_cb_hits).",
	"Misses":            "Internal lookups that found nothing (SSL_CTX_sess_misses).",
	"Timeouts":          "Sessions found expired at lookup (SSL_CTX_sess_timeouts).",
	"CacheFull":         "Sessions evicted to make room (SSL_CTX_sess_cache_full).",
	"ContextMismatches": "Sessions found under another ID context: a silent miss.",
	"StoreErrors":       "Hook (external store) calls that returned an error.",
	"InternalHits":      "Hits served by the internal cache.",
	"ExternalHits":      "Hits served by the get hook.",
	"TooLarge":          "Sessions not cached: above the per-session byte limit.",
	"Refused":           "Probationary sessions not cached: only established ones could have made room.",
}

var tierHelp = map[string]string{
	"Calls":         "Store calls made.",
	"Errors":        "Store calls that failed or passed their deadline.",
	"Skipped":       "Store calls not made while backing off.",
	"BackOffs":      "Times the store started being skipped after repeated failures.",
	"BadValues":     "Stored values that did not open (wrong key, tampered, truncated).",
	"Invalidations": "Removals by other servers received.",
	"Resyncs":       "Times the revocation channel (re)subscribed and the internal tier was flushed.",
	"Retried":       "Failed removals done later.",
	"Dropped":       "Failed removals not kept: too many pending.",
	"Pending":       "Failed removals waiting to be retried.",
	"BackingOff":    "1 while the store is being skipped.",
	"Deadline":      "Deadline of the next store call.",
	"Trusted":       "1 while the revocation watch is trusted (0: fail closed, no resumption).",
	"Untrusted":     "Times the revocation watch stopped being trusted.",
}

var earlyHelp = map[string]string{
	"Offered":  "Resumptions that offered early data (0-RTT) with a ticket allowing it.",
	"Accepted": "Early data the policy accepted.",
	"Replays":  "Early data refused: the ticket's early data was used already (a replay).",
	"Refused":  "Early data refused otherwise (policy off, claim failed).",
}

// names renames the fields whose JSON name does not read well as a metric.
var names = map[string]string{
	"Number": "sessions",
}

// settingsHelp are the cache's settings, as gauges: name and help.
var settingsHelp = [...][2]string{
	{"size_limit", "Most sessions the cache holds; 0 means no limit (SSL_CTX_sess_get_cache_size)."},
	{"timeout_seconds", "Lifetime given to new sessions (SSL_CTX_get_timeout)."},
	{"mode", "Session cache mode bits, OpenSSL's SSL_SESS_CACHE_* values."},
}
