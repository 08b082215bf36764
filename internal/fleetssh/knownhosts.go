package fleetssh

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// KnownHosts checks host keys against a known-hosts file (OpenSSH format).
// An unknown host is trusted on first use when the user says yes; a changed
// key is refused with OpenSSH's warning.
type KnownHosts struct {
	// File is the known-hosts file; created (with its directory) when a
	// key is first added.
	File string
	// Prompt is where the question is asked and the warnings written.
	Prompt io.Writer
	// Answer is where the user's answer is read.
	Answer *bufio.Reader

	beforePrompt func() // set by the dialer: lift the handshake deadline
}

// ErrHostKeyRejected is returned (wrapped) when the user declines an
// unknown host key.
var ErrHostKeyRejected = errors.New("host key verification failed")

// Callback is the ssh.HostKeyCallback.
func (k *KnownHosts) Callback(hostname string, remote net.Addr, key ssh.PublicKey) error {
	check, err := k.load()
	if err != nil {
		return err
	}
	err = check(hostname, remote, key)
	var ke *knownhosts.KeyError
	switch {
	case err == nil:
		return nil
	case !errors.As(err, &ke):
		return err
	case len(ke.Want) > 0:
		k.warnChanged(hostname, key, ke.Want[0])
		return fmt.Errorf("%w: the host key of %s does not match %s:%d", ErrHostKeyRejected, hostname, ke.Want[0].Filename, ke.Want[0].Line)
	}
	return k.trustOnFirstUse(hostname, key)
}

// load reads the file; a missing file knows no host.
func (k *KnownHosts) load() (ssh.HostKeyCallback, error) {
	if _, err := os.Stat(k.File); errors.Is(err, os.ErrNotExist) {
		return func(string, net.Addr, ssh.PublicKey) error {
			return &knownhosts.KeyError{}
		}, nil
	}
	cb, err := knownhosts.New(k.File)
	if err != nil {
		return nil, fmt.Errorf("reading known hosts %s: %w", k.File, err)
	}
	return cb, nil
}

func (k *KnownHosts) trustOnFirstUse(hostname string, key ssh.PublicKey) error {
	if k.beforePrompt != nil {
		k.beforePrompt()
	}
	fmt.Fprintf(k.Prompt, "The authenticity of host '%s' can't be established.\n%s key fingerprint is %s.\nAre you sure you want to continue connecting (yes/no)? ",
		hostname, key.Type(), ssh.FingerprintSHA256(key))
	line, err := k.Answer.ReadString('\n')
	if err != nil && (line == "" || !errors.Is(err, io.EOF)) {
		return fmt.Errorf("%w: no answer (%v)", ErrHostKeyRejected, err)
	}
	if a := strings.ToLower(strings.TrimSpace(line)); a != "yes" && a != "y" {
		return fmt.Errorf("%w: %s not trusted", ErrHostKeyRejected, hostname)
	}
	if err := os.MkdirAll(filepath.Dir(k.File), 0o700); err != nil {
		return fmt.Errorf("adding %s to known hosts: %w", hostname, err)
	}
	f, err := os.OpenFile(k.File, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("adding %s to known hosts: %w", hostname, err)
	}
	_, err = fmt.Fprintln(f, knownhosts.Line([]string{knownhosts.Normalize(hostname)}, key))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("adding %s to known hosts: %w", hostname, err)
	}
	fmt.Fprintf(k.Prompt, "Warning: Permanently added '%s' (%s) to the list of known hosts.\n", hostname, key.Type())
	return nil
}

func (k *KnownHosts) warnChanged(hostname string, got ssh.PublicKey, want knownhosts.KnownKey) {
	fmt.Fprintf(k.Prompt, `@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@
@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @
@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@
IT IS POSSIBLE THAT SOMEONE IS DOING SOMETHING NASTY!
Someone could be eavesdropping on you right now (man-in-the-middle attack)!
It is also possible that a host key has just been changed.
The fingerprint for the %s key sent by the remote host %s is
%s.
Please contact your system administrator.
Add correct host key in %s to get rid of this message.
Offending %s key in %s:%d
`, got.Type(), hostname, ssh.FingerprintSHA256(got), k.File, want.Key.Type(), want.Filename, want.Line)
}
