// Package sshtest is an SSH server and an ssh-agent for tests, on loopback
// and in process: the server accepts the agent's key, runs "exec" requests
// through a handler, and forwards direct-tcpip channels (as a jump host).
package sshtest

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"path/filepath"
	"strconv"
	"sync"
	"testing"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

// Handler runs one remote command and returns its exit status.
type Handler func(command string, stdin io.Reader, stdout, stderr io.Writer) int

// Agent is an ssh-agent holding one fresh key, served on a unix socket.
type Agent struct {
	Socket string
	Key    ssh.PublicKey
}

// NewAgent starts an agent; it stops when the test ends.
func NewAgent(t testing.TB) *Agent {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ring := agent.NewKeyring()
	if err := ring.Add(agent.AddedKey{PrivateKey: priv}); err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(t.TempDir(), "agent.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { l.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() { defer wg.Done(); defer c.Close(); _ = agent.ServeAgent(ring, c) }()
		}
	}()
	return &Agent{Socket: sock, Key: signer.PublicKey()}
}

// Server is an SSH server on 127.0.0.1.
type Server struct {
	Addr    string
	HostKey ssh.PublicKey

	mu       sync.Mutex
	commands []string
	forwards []string
}

// NewServer starts a server that accepts user's key and runs commands
// through h; it stops when the test ends.
func NewServer(t testing.TB, user ssh.PublicKey, h Handler) *Server {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	hostSigner, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	conf := &ssh.ServerConfig{PublicKeyCallback: func(_ ssh.ConnMetadata, k ssh.PublicKey) (*ssh.Permissions, error) {
		if string(k.Marshal()) == string(user.Marshal()) {
			return nil, nil
		}
		return nil, errors.New("unknown key")
	}}
	conf.AddHostKey(hostSigner)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{Addr: l.Addr().String(), HostKey: hostSigner.PublicKey()}
	var wg sync.WaitGroup
	t.Cleanup(func() { l.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() { defer wg.Done(); s.serveConn(c, conf, h) }()
		}
	}()
	return s
}

// Commands lists the commands run so far, in order.
func (s *Server) Commands() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.commands...)
}

// Forwards lists the direct-tcpip targets opened so far.
func (s *Server) Forwards() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.forwards...)
}

func (s *Server) serveConn(c net.Conn, conf *ssh.ServerConfig, h Handler) {
	defer c.Close()
	sc, chans, reqs, err := ssh.NewServerConn(c, conf)
	if err != nil {
		return
	}
	defer sc.Close()
	go ssh.DiscardRequests(reqs)
	var wg sync.WaitGroup
	defer wg.Wait()
	for nc := range chans {
		switch nc.ChannelType() {
		case "session":
			wg.Add(1)
			go func() { defer wg.Done(); s.session(nc, h) }()
		case "direct-tcpip":
			wg.Add(1)
			go func() { defer wg.Done(); s.forward(nc) }()
		default:
			_ = nc.Reject(ssh.UnknownChannelType, "unsupported")
		}
	}
}

func (s *Server) session(nc ssh.NewChannel, h Handler) {
	ch, reqs, err := nc.Accept()
	if err != nil {
		return
	}
	defer ch.Close()
	for req := range reqs {
		switch req.Type {
		case "exec", "shell":
			var cmd string
			if req.Type == "exec" {
				var p struct{ Command string }
				if ssh.Unmarshal(req.Payload, &p) != nil {
					_ = req.Reply(false, nil)
					continue
				}
				cmd = p.Command
			}
			_ = req.Reply(true, nil)
			s.mu.Lock()
			s.commands = append(s.commands, cmd)
			s.mu.Unlock()
			code := h(cmd, ch, ch, ch.Stderr())
			status := make([]byte, 4)
			binary.BigEndian.PutUint32(status, uint32(code))
			_, _ = ch.SendRequest("exit-status", false, status)
			return
		default:
			_ = req.Reply(req.Type == "pty-req" || req.Type == "auth-agent-req@openssh.com", nil)
		}
	}
}

func (s *Server) forward(nc ssh.NewChannel) {
	var p struct {
		Host     string
		Port     uint32
		OrigHost string
		OrigPort uint32
	}
	if err := ssh.Unmarshal(nc.ExtraData(), &p); err != nil {
		_ = nc.Reject(ssh.ConnectionFailed, "bad payload")
		return
	}
	target := net.JoinHostPort(p.Host, strconv.FormatUint(uint64(p.Port), 10))
	conn, err := net.Dial("tcp", target)
	if err != nil {
		_ = nc.Reject(ssh.ConnectionFailed, err.Error())
		return
	}
	defer conn.Close()
	ch, reqs, err := nc.Accept()
	if err != nil {
		return
	}
	defer ch.Close()
	go ssh.DiscardRequests(reqs)
	s.mu.Lock()
	s.forwards = append(s.forwards, target)
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { _, _ = io.Copy(conn, ch); closeWrite(conn); close(done) }()
	_, _ = io.Copy(ch, conn)
	_ = ch.CloseWrite()
	<-done
}

func closeWrite(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.CloseWrite()
	}
}
