package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/pflag"
)

// etcdPasswordEnv holds the password for --etcd-username. The password comes
// from there or from --etcd-password-file, never from a flag, so that it does
// not show in the process list.
const etcdPasswordEnv = envPrefix + "ETCD_PASSWORD"

// maxPasswordFile bounds what is read of --etcd-password-file.
const maxPasswordFile = 4096

// etcdAuthOptions are the flags of etcd authentication for --driver=etcd.
type etcdAuthOptions struct {
	username     string
	passwordFile string
}

func (o *etcdAuthOptions) addFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.username, "etcd-username", "", "User name for etcd authentication if --driver=etcd; the password comes from "+etcdPasswordEnv+" or --etcd-password-file.")
	fs.StringVar(&o.passwordFile, "etcd-password-file", "", "File holding the password of --etcd-username.")
}

// credentials returns the user name and password to authenticate with: both,
// or neither (then etcd takes the user from the client certificate's common
// name, if it checks client certificates).
func (o etcdAuthOptions) credentials(getenv func(string) string) (user, password string, err error) {
	password = getenv(etcdPasswordEnv)
	if o.passwordFile != "" {
		if password != "" {
			return "", "", fmt.Errorf("--etcd-password-file and %s are both set; use one", etcdPasswordEnv)
		}
		if password, err = readPasswordFile(o.passwordFile); err != nil {
			return "", "", err
		}
	}
	switch {
	case o.username != "" && password == "":
		return "", "", fmt.Errorf("--etcd-username %s needs a password: set %s or --etcd-password-file", o.username, etcdPasswordEnv)
	case o.username == "" && password != "":
		return "", "", errors.New("an etcd password is set without --etcd-username")
	}
	return o.username, password, nil
}

// readPasswordFile reads a password: the file's content without its final
// line break.
func readPasswordFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("reading --etcd-password-file: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxPasswordFile+1))
	if err != nil {
		return "", fmt.Errorf("reading --etcd-password-file %s: %w", path, err)
	}
	if len(b) > maxPasswordFile {
		return "", fmt.Errorf("--etcd-password-file %s: longer than %d bytes", path, maxPasswordFile)
	}
	password := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
	if password == "" {
		return "", fmt.Errorf("--etcd-password-file %s is empty", path)
	}
	return password, nil
}
