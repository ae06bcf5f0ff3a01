//go:build go1.27

package gateway

import (
	"cmp"
	"net/http"
)

// leaveHeaderCountToGateway keeps Go 1.27's own header count
// (http.Server.MaxHeaderValueCount, 500 by default) from answering before
// the gateway's (headerFieldsOK), whose answer is the same on Go 1.26: it is
// set where no request within MaxHeaderBytes can reach it, every field
// taking at least one octet of it. A caller's own value is kept.
func leaveHeaderCountToGateway(hs *http.Server) {
	if hs.MaxHeaderValueCount == 0 {
		hs.MaxHeaderValueCount = cmp.Or(hs.MaxHeaderBytes, http.DefaultMaxHeaderBytes) + 1
	}
}
