package harness

import (
	"net"
	"strings"
	"testing"
)

// An expect that fails says what was expected and what came, and never
// counts the bytes that came as progress towards what was expected.
func TestExpectFailureSaysExpectedAndGot(t *testing.T) {
	for _, tc := range []struct {
		name, sent, want string
		says             []string
	}{
		{"wrong bytes then close", "welcome!\n", "hello, echo\n", []string{
			`expected: "hello, echo\n"`,
			`got:      "welcome!\n", then the server closed the connection`,
			`the first difference is at byte 0`,
		}},
		{"nothing then close", "", "welcome!\n", []string{
			`expected: "welcome!\n"`,
			`got:      nothing: the server closed the connection`,
		}},
		{"a prefix then close", "hel", "hello\n", []string{
			`got:      "hel", then the server closed the connection`,
		}},
		{"same length, different", "hallo\n", "hello\n", []string{
			`got:      "hallo\n"`,
			`the first difference is at byte 1`,
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mine, theirs := net.Pipe()
			go func() {
				theirs.Write([]byte(tc.sent))
				theirs.Close()
			}()
			c := newClient("alice", mine, nil)
			defer mine.Close()
			err := c.expect([]byte(tc.want))
			if err == nil {
				t.Fatalf("expect %q passed on %q", tc.want, tc.sent)
			}
			msg := err.Error()
			for _, want := range tc.says {
				if !strings.Contains(msg, want) {
					t.Errorf("the failure does not say %q:\n%s", want, msg)
				}
			}
			if strings.Contains(msg, " of ") {
				t.Errorf("the failure counts bytes as progress (\"N of M\"):\n%s", msg)
			}
		})
	}
}
