package testenv_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/outreach/outreach/internal/testenv"
)

// fakeServer answers the command "R I" with replies[I], bytes as given, and
// any other command with +OK. It serves each connection until it closes.
func fakeServer(t *testing.T, replies []string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer conn.Close()
				r := bufio.NewReader(conn)
				for {
					args, err := readArray(r)
					if err != nil {
						return
					}
					reply := "+OK\r\n"
					if len(args) == 2 && strings.EqualFold(args[0], "R") {
						i, _ := strconv.Atoi(args[1])
						reply = replies[i]
					}
					if _, err := io.WriteString(conn, reply); err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// readArray reads a command, an array of bulk strings, the test's own way.
func readArray(r *bufio.Reader) ([]string, error) {
	var n int
	if _, err := fmt.Fscanf(r, "*%d\r\n", &n); err != nil {
		return nil, err
	}
	args := make([]string, n)
	for i := range args {
		var size int
		if _, err := fmt.Fscanf(r, "$%d\r\n", &size); err != nil {
			return nil, err
		}
		b := make([]byte, size+2)
		if _, err := io.ReadFull(r, b); err != nil {
			return nil, err
		}
		args[i] = string(b[:size])
	}
	return args, nil
}

func command(args ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	return b.String()
}

// exchange sends request on a new connection to addr and reads want's
// length in reply, then checks that nothing more arrives.
func exchange(t *testing.T, addr, request string, want int) []byte {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, request); err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	got := make([]byte, want)
	if n, err := io.ReadFull(conn, got); err != nil {
		t.Fatalf("read %d of %d bytes: %v; got %q", n, want, err, got[:n])
	}
	conn.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if n, _ := conn.Read(make([]byte, 1)); n != 0 {
		t.Errorf("more bytes than the replies")
	}
	return got
}

// replyKinds holds one reply of every RESP2 and RESP3 type the proxy must
// carry, nested ones included.
var replyKinds = []string{
	"+OK\r\n",
	"-ERR from the server\r\n",
	":-42\r\n",
	"$5\r\nhello\r\n",
	"$0\r\n\r\n",
	"$-1\r\n", // RESP2 null
	"*-1\r\n", // RESP2 null array
	"*0\r\n",
	"*3\r\n:1\r\n*2\r\n$1\r\na\r\n*-1\r\n$-1\r\n",
	"_\r\n",
	",3.25\r\n",
	",-inf\r\n",
	"#t\r\n",
	"#f\r\n",
	"(3492890328409238509324850943850943825024385\r\n",
	"=15\r\ntxt:Some string\r\n",
	"!21\r\nSYNTAX invalid syntax\r\n",
	"%2\r\n+first\r\n:1\r\n$6\r\nsecond\r\n~2\r\n#t\r\n_\r\n",
	"~3\r\n+a\r\n+b\r\n%1\r\n+k\r\n,1.5\r\n",
	"|1\r\n+key-popularity\r\n%2\r\n$1\r\na\r\n,0.1923\r\n$1\r\nb\r\n,0.0012\r\n*2\r\n:2039123\r\n:9543892\r\n",
	"*2\r\n|1\r\n+ttl\r\n:3600\r\n$1\r\nx\r\n:2\r\n",
	"$" + strconv.Itoa(1<<20) + "\r\n" + strings.Repeat("v\r\n*", 1<<20/4) + "\r\n",
}

func TestRESPProxyCarriesEveryReplyType(t *testing.T) {
	server := fakeServer(t, replyKinds)
	p := testenv.NewRESPProxy(t, server)
	var fails = map[int]bool{3: true, 10: true, 11: true, 19: true}
	p.Fail(func(c testenv.RESPCommand) bool {
		i, _ := strconv.Atoi(c.Args[0])
		return c.Name == "R" && fails[i]
	})
	var request, want strings.Builder
	for round := range 2 { // the whole pipeline twice, on one connection
		for i, reply := range replyKinds {
			request.WriteString(command("r", strconv.Itoa(i))) // the name in lower case: matched in upper case
			if fails[i] {
				reply = "-" + testenv.DefaultFault + "\r\n"
			}
			want.WriteString(reply)
		}
		if round == 0 {
			request.WriteString(command("PING", strings.Repeat("x", 1<<20))) // a large argument, forwarded
			want.WriteString("+OK\r\n")
		}
	}
	got := exchange(t, p.Addr, request.String(), want.Len())
	if !bytes.Equal(got, []byte(want.String())) {
		t.Errorf("replies differ from the server's with the faults in place")
	}
	if n := p.Failed(); n != int64(2*len(fails)) {
		t.Errorf("Failed() = %d, want %d", n, 2*len(fails))
	}
}

// recordingTB records the errors reported to it instead of failing.
type recordingTB struct {
	testing.TB
	mu   sync.Mutex
	errs []string
}

func (r *recordingTB) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

func TestRESPProxyFailsLoudlyOnWhatItCannotFollow(t *testing.T) {
	for name, tc := range map[string]struct{ reply, request, want string }{
		"push frame":     {">2\r\n+message\r\n+x\r\n", command("R", "0"), "push frame"},
		"unknown type":   {"?1\r\n", command("R", "0"), "unknown RESP reply type"},
		"streamed bulk":  {"$?\r\n;4\r\nHell\r\n;0\r\n", command("R", "0"), "streamed strings"},
		"inline command": {"+OK\r\n", "PING\r\n", "inline commands"},
	} {
		t.Run(name, func(t *testing.T) {
			rec := &recordingTB{TB: t}
			t.Run("proxy", func(t *testing.T) {
				rec.TB = t
				p := testenv.NewRESPProxy(rec, fakeServer(t, []string{tc.reply}))
				conn, err := net.Dial("tcp", p.Addr)
				if err != nil {
					t.Fatal(err)
				}
				defer conn.Close()
				io.WriteString(conn, tc.request)
				conn.SetReadDeadline(time.Now().Add(10 * time.Second))
				b, err := io.ReadAll(conn)
				if err != nil {
					t.Fatalf("the proxy did not close the connection: %v", err)
				}
				if strings.Contains(string(b), "message") {
					t.Errorf("the client got %q", b)
				}
				if err := p.Err(); err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Errorf("Err() = %v, want one about %q", err, tc.want)
				}
			})
			if len(rec.errs) != 1 || !strings.Contains(rec.errs[0], tc.want) {
				t.Errorf("errors reported at cleanup: %q, want one about %q", rec.errs, tc.want)
			}
		})
	}
}
