// Command go-echod is the Go reference of echod's benchmarks: the JSON echo service that
// echod replaces, with the same behaviour, on fasthttp, zerolog, client_golang and
// google/uuid. The original ran on the fiber framework, which Debian does not package;
// this program does on plain fasthttp the few things fiber did for it.
//
//	GET|HEAD /health       200 "OK"; no auth, neither logged nor counted
//	GET|HEAD /metrics      Prometheus text format; no auth, neither logged nor counted
//	POST|PUT /api/echo     basic auth; a JSON object comes back with "echoed": true
//
// Everything else needs basic auth too. Paths match without regard to case or
// trailing slashes. A request that reaches the router is logged (one zerolog JSON
// line on stderr), counted in http_requests_total{status,method,path}, timed in
// http_request_duration_milliseconds and answered with X-Response-Time, and with
// X-Request-Id when the request had no X-Request-ID. A known path with another
// method is answered 405 with Allow, and is neither logged nor counted.
//
//	go-echod [-addr :3000] [-level info] [-tls-cert cert.pem -tls-key key.pem]
package main

import (
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/common/expfmt"
	"github.com/rs/zerolog"
	"github.com/valyala/fasthttp"
)

// The demo users, as the original had them in its source.
var users = map[string]string{
	"remarkablebob": "2rFtex",
	"dextroussheep": "vSKjGK",
	"luckyslug":     "VRsBMW",
	"pettyrabbit":   "2BpgwH",
}

// The methods the router knows, in the order in which an Allow header lists them.
var knownMethods = []string{"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"}

// Each route's path, as it is matched, and its methods in Allow order.
var routes = map[string][]string{
	"/health":   {"GET", "HEAD"},
	"/metrics":  {"GET", "HEAD"},
	"/api/echo": {"POST", "PUT"},
}

// Server settings: the framework defaults that the original ran with.
const (
	maxBodyBytes   = 4 << 20
	maxConnections = 256 << 10
	bufferBytes    = 4096
	realm          = "Restricted"
)

func main() {
	addr := flag.String("addr", ":3000", "address to listen on (IPv4)")
	level := flag.String("level", "info", "log level: trace, debug, info, warn, error, fatal, panic or disabled")
	certFile := flag.String("tls-cert", "", "PEM certificate chain: serve HTTPS instead of HTTP")
	keyFile := flag.String("tls-key", "", "PEM private key of -tls-cert")
	flag.Parse()
	if err := run(*addr, *level, *certFile, *keyFile); err != nil {
		fmt.Fprintln(os.Stderr, "go-echod:", err)
		os.Exit(1)
	}
}

func run(addr, level, certFile, keyFile string) error {
	lvl, err := zerolog.ParseLevel(level)
	if err != nil {
		return fmt.Errorf("-level %q: %w", level, err)
	}
	if (certFile == "") != (keyFile == "") {
		return errors.New("-tls-cert and -tls-key go together")
	}
	zerolog.TimeFieldFormat = zerolog.TimeFormatUnix
	logger := zerolog.New(os.Stderr).Level(lvl).With().Timestamp().Logger()
	svc := newService(logger)
	server := &fasthttp.Server{
		Handler:               svc.serve,
		ErrorHandler:          refuse,
		Logger:                silent{},
		Concurrency:           maxConnections,
		MaxRequestBodySize:    maxBodyBytes,
		ReadBufferSize:        bufferBytes,
		WriteBufferSize:       bufferBytes,
		NoDefaultServerHeader: true,
	}
	listener, err := net.Listen("tcp4", addr)
	if err != nil {
		return err
	}
	if certFile != "" {
		fmt.Printf("go-echod listening on https://%s\n", listener.Addr())
		return server.ServeTLS(listener, certFile, keyFile)
	}
	fmt.Printf("go-echod listening on http://%s\n", listener.Addr())
	return server.Serve(listener)
}

// service holds what every request shares: the logger and the metrics.
type service struct {
	log      zerolog.Logger
	registry *prometheus.Registry
	requests *prometheus.CounterVec
	duration prometheus.Histogram
}

func newService(logger zerolog.Logger) *service {
	s := &service{
		log:      logger,
		registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "http_requests_total",
			Help: "Requests answered, by status, method and path.",
		}, []string{"status", "method", "path"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "http_request_duration_milliseconds",
			Help: "Time to answer a request, in milliseconds.",
			// The library's default buckets, as the original had them.
		}),
	}
	s.registry.MustRegister(s.requests, s.duration,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return s
}

// serve is the one request handler: probes first, then auth, routing and the record.
func (s *service) serve(ctx *fasthttp.RequestCtx) {
	method := string(ctx.Method())
	if !contains(knownMethods, method) {
		ctx.SetStatusCode(fasthttp.StatusBadRequest)
		ctx.SetBodyString("Invalid http method")
		return
	}
	path := string(ctx.URI().PathOriginal())
	key := routeKey(path)
	if method == "GET" || method == "HEAD" {
		switch key {
		case "/health":
			plain(ctx, fasthttp.StatusOK, "OK")
			return
		case "/metrics":
			s.metrics(ctx)
			return
		}
	}
	started := time.Now()
	switch {
	case !authorized(ctx.Request.Header.Peek("Authorization")):
		ctx.Response.Header.Set("WWW-Authenticate", "basic realm="+realm)
		plain(ctx, fasthttp.StatusUnauthorized, "Unauthorized")
	case key == "/api/echo" && (method == "POST" || method == "PUT"):
		echo(ctx)
	case routes[key] != nil:
		// The original's logging middleware passed this error on unrecorded.
		ctx.Response.Header.Set("Allow", strings.Join(routes[key], ", "))
		plain(ctx, fasthttp.StatusMethodNotAllowed, "Method Not Allowed")
		return
	default:
		plain(ctx, fasthttp.StatusNotFound, "Cannot "+method+" "+path)
	}
	s.record(ctx, started, method, path)
}

// record writes the log line, counts the request and sets the timing and id headers.
func (s *service) record(ctx *fasthttp.RequestCtx, started time.Time, method, path string) {
	status := strconv.Itoa(ctx.Response.StatusCode())
	requestID := string(ctx.Request.Header.Peek("X-Request-ID"))
	if requestID == "" {
		requestID = uuid.NewString()
		ctx.Response.Header.Set("X-Request-Id", requestID)
	}
	scheme := "http"
	if ctx.IsTLS() {
		scheme = "https"
	}
	s.log.Info().Dict("context", zerolog.Dict().
		Str("userId", userName(ctx.Request.Header.Peek("Authorization"))).
		Str("requestId", requestID).
		Str("status", status),
	).Msg(method + " " + path + " " + scheme)
	s.requests.WithLabelValues(status, method, path).Inc()
	elapsed := float64(time.Since(started).Nanoseconds()) / 1e6
	ctx.Response.Header.Set("X-Response-Time", strconv.FormatFloat(elapsed, 'f', 2, 64)+"ms")
	s.duration.Observe(elapsed)
}

// metrics answers with every registered metric in the Prometheus text format.
func (s *service) metrics(ctx *fasthttp.RequestCtx) {
	families, err := s.registry.Gather()
	if err != nil {
		plain(ctx, fasthttp.StatusInternalServerError, err.Error())
		return
	}
	ctx.SetContentType(string(expfmt.FmtText))
	encoder := expfmt.NewEncoder(ctx, expfmt.FmtText)
	for _, family := range families {
		if err := encoder.Encode(family); err != nil {
			plain(ctx, fasthttp.StatusInternalServerError, err.Error())
			return
		}
	}
}

// echo answers a JSON object with "echoed": true added, its keys sorted; anything else 400.
func echo(ctx *fasthttp.RequestCtx) {
	var object map[string]interface{}
	body, err := decodedBody(ctx)
	if err != nil || json.Unmarshal(body, &object) != nil || object == nil {
		plain(ctx, fasthttp.StatusBadRequest, "Bad Request")
		return
	}
	if seen, ok := object["echoed"]; ok && (seen == true || seen == "true") {
		plain(ctx, fasthttp.StatusBadRequest, "Bad Request")
		return
	}
	object["echoed"] = true
	answer, err := json.Marshal(object)
	if err != nil {
		plain(ctx, fasthttp.StatusInternalServerError, "Internal Server Error")
		return
	}
	ctx.SetContentType("application/json")
	ctx.SetBody(answer)
}

// decodedBody is the request body, decompressed as its Content-Encoding says.
func decodedBody(ctx *fasthttp.RequestCtx) ([]byte, error) {
	switch string(ctx.Request.Header.Peek("Content-Encoding")) {
	case "gzip":
		return ctx.Request.BodyGunzip()
	case "deflate":
		return ctx.Request.BodyInflate()
	case "br", "brotli":
		return ctx.Request.BodyUnbrotli()
	}
	return ctx.Request.Body(), nil
}

// authorized checks "Basic base64(user:password)" against the demo users.
func authorized(header []byte) bool {
	value := string(header)
	if len(value) <= 6 || !strings.EqualFold(value[:5], "basic") {
		return false
	}
	decoded, err := base64.StdEncoding.DecodeString(value[6:])
	if err != nil {
		return false
	}
	user, password, found := strings.Cut(string(decoded), ":")
	want, known := users[user]
	return found && known && subtle.ConstantTimeCompare([]byte(password), []byte(want)) == 1
}

// userName is the user an Authorization header names, verified or not; "" when none.
func userName(header []byte) string {
	fields := strings.Split(string(header), " ")
	if len(fields) < 2 {
		return ""
	}
	decoded, err := base64.StdEncoding.DecodeString(fields[1])
	if err != nil {
		return ""
	}
	user, _, _ := strings.Cut(string(decoded), ":")
	return user
}

// routeKey is the path as routes match it: ASCII lower case, without trailing slashes.
func routeKey(path string) string {
	key := strings.ToLower(path)
	for len(key) > 1 && strings.HasSuffix(key, "/") {
		key = key[:len(key)-1]
	}
	return key
}

// plain sets a status and a plain-text body.
func plain(ctx *fasthttp.RequestCtx, status int, body string) {
	ctx.SetStatusCode(status)
	ctx.SetContentType("text/plain; charset=utf-8")
	ctx.SetBodyString(body)
}

// refuse answers a request that fasthttp could not read, as the original's framework did.
func refuse(ctx *fasthttp.RequestCtx, err error) {
	var small *fasthttp.ErrSmallBuffer
	var netErr net.Error
	switch {
	case errors.As(err, &small):
		plain(ctx, fasthttp.StatusRequestHeaderFieldsTooLarge, "Request Header Fields Too Large")
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		plain(ctx, fasthttp.StatusRequestEntityTooLarge, "Request Entity Too Large")
	case errors.As(err, &netErr) && netErr.Timeout(), strings.Contains(err.Error(), "timeout"):
		plain(ctx, fasthttp.StatusRequestTimeout, "Request Timeout")
	default:
		plain(ctx, fasthttp.StatusBadRequest, "Bad Request")
	}
}

func contains(list []string, value string) bool {
	for _, item := range list {
		if item == value {
			return true
		}
	}
	return false
}

// silent drops fasthttp's own log lines.
type silent struct{}

func (silent) Printf(string, ...interface{}) {}
