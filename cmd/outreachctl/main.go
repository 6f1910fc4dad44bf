// Command outreachctl is the command line of outreach, for people: it scrubs
// call lists, checks a customer before a call, shows a customer's timeline,
// sends events and uploads suppression lists, all over the HTTP API.
//
// Exit codes: 0 the command did what it was asked (a check that answers "not
// allowed" is a success), 1 a request failed or some input was rejected,
// 2 the command line is wrong, 3 `check --exit-code` answered "not allowed".
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
)

// Exit codes.
const (
	exitOK         = 0
	exitFailed     = 1 // a request failed, or input was invalid or rejected
	exitUsage      = 2 // the command line is wrong
	exitNotAllowed = 3 // check --exit-code: the contact is not allowed
)

// Defaults of the global flags.
const (
	defaultServer  = "http://127.0.0.1:8080"
	defaultTimeout = 30 * time.Second
	defaultEvery   = 5 * time.Second
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// app holds what every command shares: the streams, the global flags and
// the client they configure.
type app struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string

	// Global flags.
	server        string
	key           string
	timeout       time.Duration
	progressMode  string
	progressEvery time.Duration

	client *client
	// ran is set when a command's own code starts: an error before that
	// came from parsing the command line.
	ran bool

	// retryWait is the first pause before a retry of a failed event batch;
	// tests shorten it.
	retryWait time.Duration
	now       func() time.Time
}

// run runs outreachctl with args and returns its exit code.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) int {
	a := &app{stdin: stdin, stdout: stdout, stderr: stderr, getenv: getenv, retryWait: time.Second, now: time.Now}
	return a.run(ctx, args)
}

func (a *app) run(ctx context.Context, args []string) int {
	root := a.rootCommand()
	if args == nil {
		args = []string{} // cobra reads os.Args when args is nil
	}
	root.SetArgs(args)
	root.SetIn(a.stdin)
	root.SetOut(a.stdout)
	root.SetErr(a.stderr)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return exitOK
	}
	if cmd == nil {
		cmd = root
	}
	var code exitCode
	if errors.As(err, &code) {
		return int(code)
	}
	var ue *usageError
	if errors.As(err, &ue) || !a.ran {
		fmt.Fprintf(a.stderr, "%s: %v\nRun '%s --help' for usage.\n", cmd.CommandPath(), err, cmd.CommandPath())
		return exitUsage
	}
	if ctx.Err() != nil && errors.Is(err, context.Canceled) {
		err = errors.New("interrupted")
	}
	fmt.Fprintf(a.stderr, "%s: %v\n", cmd.CommandPath(), err)
	return exitFailed
}

// usageError is a mistake on the command line; it exits with exitUsage.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error {
	return &usageError{err: fmt.Errorf(format, args...)}
}

// exitCode ends outreachctl with that code and no further message.
type exitCode int

func (e exitCode) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

// runE marks the start of a command's own code, so that errors after it are
// not taken for usage errors.
func (a *app) runE(fn func(cmd *cobra.Command, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		a.ran = true
		return fn(cmd, args)
	}
}

// args returns a cobra.PositionalArgs that wants exactly the named
// arguments, and names the missing ones.
func args(names ...string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		switch {
		case len(args) < len(names):
			return usagef("missing %s", strings.Join(names[len(args):], " and "))
		case len(args) > len(names):
			return usagef("unexpected argument %q", args[len(names)])
		}
		for i, a := range args {
			if strings.TrimSpace(a) == "" {
				return usagef("%s must not be empty", names[i])
			}
		}
		return nil
	}
}

// group returns the RunE of a command that only holds subcommands: without
// one, it is a usage error.
func (a *app) group(cmd *cobra.Command, args []string) error {
	cmd.SetOut(a.stderr)
	cmd.Help()
	if len(args) > 0 {
		return usagef("unknown command %q", args[0])
	}
	return usagef("missing command")
}

const rootLong = `outreachctl talks to an outreach server: it scrubs call lists, checks a
customer before a call, shows a customer's timeline, sends events and
uploads suppression lists.

Progress goes to stderr: a progress bar on a terminal, plain lines every
--progress-every otherwise. Data goes to stdout, or to the -o file.

Exit codes:
  0  done; a check that answers "not allowed" is a successful check
  1  a request failed, or some input was invalid or rejected
  2  the command line is wrong (unknown command or flag, missing argument,
     invalid flag value, an input file that cannot be opened)
  3  check --exit-code: the contact is not allowed`

func (a *app) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:               "outreachctl",
		Short:             "The outreach command line",
		Long:              rootLong,
		SilenceErrors:     true,
		SilenceUsage:      true,
		Args:              cobra.ArbitraryArgs,
		RunE:              a.group,
		PersistentPreRunE: a.setup,
	}
	root.CompletionOptions.HiddenDefaultCmd = true
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &usageError{err: err} })
	f := root.PersistentFlags()
	f.StringVar(&a.server, "server", defaultServer, "the outreach server's URL (env OUTREACH_SERVER)")
	f.StringVar(&a.key, "key", "", "the API key, sent as Authorization: Bearer KEY (env OUTREACH_KEY, which keeps it out of ps)")
	f.DurationVar(&a.timeout, "timeout", defaultTimeout, "time limit of each short request (check, contacts, an event batch); uploads have none")
	f.StringVar(&a.progressMode, "progress", "auto", "progress on stderr: auto (a bar on a terminal, else plain lines), bar, plain or none")
	f.DurationVar(&a.progressEvery, "progress-every", defaultEvery, "how often plain progress lines are printed")

	root.AddCommand(a.scrubCommand(), a.checkCommand(), a.contactsCommand(), a.eventsCommand(), a.suppressCommand(),
		a.auditCommand(), a.forgetCommand())
	return root
}

// setup applies the environment to the global flags that were not given,
// checks them and builds the client.
func (a *app) setup(cmd *cobra.Command, _ []string) error {
	flags := cmd.Flags()
	if !flags.Changed("server") {
		if v := a.getenv("OUTREACH_SERVER"); v != "" {
			a.server = v
		}
	}
	if !flags.Changed("key") {
		a.key = a.getenv("OUTREACH_KEY")
	}
	switch a.progressMode {
	case "auto", "bar", "plain", "none":
	default:
		return usagef("--progress must be auto, bar, plain or none; got %q", a.progressMode)
	}
	if a.progressEvery <= 0 {
		return usagef("--progress-every must be positive")
	}
	if a.timeout <= 0 {
		return usagef("--timeout must be positive")
	}
	c, err := newClient(a.server, a.key, a.timeout)
	if err != nil {
		return &usageError{err: err}
	}
	a.client = c
	return nil
}

// openInput opens a file named on the command line, or stdin for "-". It
// returns the file's size, or -1 when it is not known. A file that cannot
// be opened is a usage error.
func (a *app) openInput(name string) (io.ReadCloser, int64, error) {
	if name == "-" {
		return io.NopCloser(a.stdin), -1, nil
	}
	f, err := os.Open(name)
	if err != nil {
		return nil, 0, &usageError{err: err}
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, &usageError{err: err}
	}
	if st.IsDir() {
		f.Close()
		return nil, 0, usagef("%s is a directory", name)
	}
	size := st.Size()
	if !st.Mode().IsRegular() {
		size = -1
	}
	return f, size, nil
}
