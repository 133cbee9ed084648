// Command wsload is the WebSocket load generator of echod's benchmarks. It opens -c
// connections with a basic auth header, then each connection sends a small JSON text
// message, waits for its echo and checks it, in a loop, for -d. It stops by itself: every
// read and write has a deadline of -d plus -timeout from the start.
//
// It prints one JSON object on stdout:
//
//	{"connections":100,"connected":100,"seconds":8.001,"messages":812345,
//	 "messages_per_second":101531.2,"p50_ms":0.9,"p90_ms":1.4,"p99_ms":2.8,"max_ms":9.1,
//	 "errors":0,"mismatches":0}
//
// messages counts the round trips that started within -d; errors counts connections that
// failed (handshake, read or write); mismatches counts echoes that differ from what
// was sent. The exit status is 1 when no message came back.
//
//	wsload -url ws://127.0.0.1:3000/api/raw [-c 100] [-d 8s] [-user remarkablebob:2rFtex]
package main

import (
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// report is what wsload prints.
type report struct {
	Connections int     `json:"connections"`
	Connected   int     `json:"connected"`
	Seconds     float64 `json:"seconds"`
	Messages    int     `json:"messages"`
	PerSecond   float64 `json:"messages_per_second"`
	P50         float64 `json:"p50_ms"`
	P90         float64 `json:"p90_ms"`
	P99         float64 `json:"p99_ms"`
	Max         float64 `json:"max_ms"`
	Errors      int     `json:"errors"`
	Mismatches  int     `json:"mismatches"`
}

// connection is what one connection measured: its round trips, in microseconds.
type connection struct {
	roundTrips []int64
	failed     bool
	mismatches int
}

func main() {
	url := flag.String("url", "ws://127.0.0.1:3000/api/raw", "WebSocket URL (loopback)")
	connections := flag.Int("c", 100, "connections")
	duration := flag.Duration("d", 8*time.Second, "how long the connections send")
	user := flag.String("user", "remarkablebob:2rFtex", "basic auth user:password; empty for none")
	timeout := flag.Duration("timeout", 5*time.Second, "how long past -d a connection may wait for an echo")
	flag.Parse()
	if *connections < 1 || *duration <= 0 {
		fmt.Fprintln(os.Stderr, "wsload: -c and -d must be positive")
		os.Exit(2)
	}
	header := http.Header{}
	if *user != "" {
		header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(*user)))
	}
	result := run(*url, header, *connections, *duration, *timeout)
	out, _ := json.Marshal(result)
	fmt.Println(string(out))
	if result.Messages == 0 {
		os.Exit(1)
	}
}

// run opens the connections, starts them together, and gathers what they measured.
func run(url string, header http.Header, count int, duration, timeout time.Duration) report {
	dialer := websocket.Dialer{HandshakeTimeout: timeout}
	conns := make([]*websocket.Conn, count)
	var wg sync.WaitGroup
	for i := range conns {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			if conn, _, err := dialer.Dial(url, header); err == nil {
				conns[i] = conn
			}
		}(i)
	}
	wg.Wait()

	started := time.Now()
	end := started.Add(duration)
	results := make([]connection, count)
	for i, conn := range conns {
		if conn == nil {
			results[i].failed = true
			continue
		}
		wg.Add(1)
		go func(i int, conn *websocket.Conn) {
			defer wg.Done()
			results[i] = talk(conn, i, end, end.Add(timeout))
		}(i, conn)
	}
	wg.Wait()
	seconds := time.Since(started).Seconds()

	r := report{Connections: count, Seconds: seconds}
	var all []int64
	for _, c := range results {
		all = append(all, c.roundTrips...)
		r.Mismatches += c.mismatches
		if c.failed {
			r.Errors++
		}
	}
	r.Connected = count - countNil(conns)
	r.Messages = len(all)
	r.PerSecond = float64(len(all)) / seconds
	sort.Slice(all, func(a, b int) bool { return all[a] < all[b] })
	r.P50, r.P90, r.P99 = percentile(all, 0.50), percentile(all, 0.90), percentile(all, 0.99)
	if len(all) > 0 {
		r.Max = float64(all[len(all)-1]) / 1000
	}
	return r
}

// talk sends messages on one connection until end, each after the echo of the last.
func talk(conn *websocket.Conn, id int, end, deadline time.Time) connection {
	defer conn.Close()
	_ = conn.SetReadDeadline(deadline)
	_ = conn.SetWriteDeadline(deadline)
	result := connection{roundTrips: make([]int64, 0, 1<<14)}
	message := []byte(`{"foo":"bar","connection":` + strconv.Itoa(id) + `}`)
	for {
		sent := time.Now()
		if !sent.Before(end) {
			break
		}
		if err := conn.WriteMessage(websocket.TextMessage, message); err != nil {
			result.failed = true
			return result
		}
		kind, echo, err := conn.ReadMessage()
		if err != nil {
			result.failed = true
			return result
		}
		result.roundTrips = append(result.roundTrips, time.Since(sent).Microseconds())
		if kind != websocket.TextMessage || string(echo) != string(message) {
			result.mismatches++
		}
	}
	_ = conn.WriteControl(websocket.CloseMessage,
		websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), deadline)
	return result
}

// percentile is the round trip at fraction q of the sorted list, in milliseconds.
func percentile(sorted []int64, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	return float64(sorted[int(q*float64(len(sorted)-1))]) / 1000
}

func countNil(conns []*websocket.Conn) int {
	n := 0
	for _, conn := range conns {
		if conn == nil {
			n++
		}
	}
	return n
}
