// Command go-ws-echo is the Go reference of echod's WebSocket benchmarks: net/http and
// gorilla/websocket with the contract of echod's /api/raw WebSocket.
//
//	GET|HEAD /health   200 {"status":"ok"}
//	GET /api/raw       basic auth on the handshake (401 without), then a WebSocket that
//	                   sends every message back unchanged: text as text, binary as binary;
//	                   text that is not UTF-8 closes it with 1007
//
// It writes one JSON line per closed connection on stderr.
//
//	go-ws-echo [-addr 127.0.0.1:3000] [-max-message-bytes 1048576]
package main

import (
	"crypto/subtle"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"time"
	"unicode/utf8"

	"github.com/gorilla/websocket"
)

// The demo users of echod.
var users = map[string]string{
	"remarkablebob": "2rFtex",
	"dextroussheep": "vSKjGK",
	"luckyslug":     "VRsBMW",
	"pettyrabbit":   "2BpgwH",
}

// maxMessageBytes is the largest message, echod's default body limit unless -max-message-bytes
// says otherwise (make autobahn raises it, as it raises echod's --max-body-bytes).
var maxMessageBytes int64 = 1 << 20

var upgrader = websocket.Upgrader{
	HandshakeTimeout: 10 * time.Second,
	ReadBufferSize:   4096,
	WriteBufferSize:  4096,
}

func main() {
	addr := flag.String("addr", "127.0.0.1:3000", "address to listen on")
	flag.Int64Var(&maxMessageBytes, "max-message-bytes", maxMessageBytes, "largest message, in bytes")
	flag.Parse()
	mux := http.NewServeMux()
	mux.HandleFunc("/health", health)
	mux.HandleFunc("/api/raw", raw)
	server := &http.Server{Addr: *addr, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(os.Stderr, "go-ws-echo listening on http://%s\n", *addr)
	if err := server.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintln(os.Stderr, "go-ws-echo:", err)
		os.Exit(1)
	}
}

func health(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write([]byte(`{"status":"ok"}`))
}

// raw checks the handshake's credentials, upgrades, and echoes until the client closes.
func raw(w http.ResponseWriter, r *http.Request) {
	user, password, ok := r.BasicAuth()
	want, known := users[user]
	if !ok || !known || subtle.ConstantTimeCompare([]byte(password), []byte(want)) != 1 {
		w.Header().Set("WWW-Authenticate", `Basic realm="echod", charset="UTF-8"`)
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	conn, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return // the upgrader has answered the client already
	}
	defer conn.Close()
	conn.SetReadLimit(maxMessageBytes)
	started := time.Now()
	messages, closeCode := 0, websocket.CloseNoStatusReceived
	for {
		kind, message, err := conn.ReadMessage()
		if err != nil {
			var closed *websocket.CloseError
			if errors.As(err, &closed) {
				closeCode = closed.Code
			}
			break
		}
		if kind == websocket.TextMessage && !utf8.Valid(message) {
			// RFC 6455 section 8.1: text that is not UTF-8 fails the connection (1007).
			// gorilla/websocket leaves this check to the application; echod's server makes it.
			closeCode = websocket.CloseInvalidFramePayloadData
			_ = conn.WriteControl(websocket.CloseMessage,
				websocket.FormatCloseMessage(closeCode, "invalid UTF-8"), time.Now().Add(time.Second))
			break
		}
		if err := conn.WriteMessage(kind, message); err != nil {
			break
		}
		messages++
	}
	fmt.Fprintf(os.Stderr, `{"level":"info","path":"/api/raw","userId":%q,"messages":%d,"close":%d,"duration_ms":%.3f}`+"\n",
		user, messages, closeCode, float64(time.Since(started).Microseconds())/1000)
}
