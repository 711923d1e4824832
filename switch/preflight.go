package switching

import (
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"

	"github.com/cardswitch/cardswitch/hsm"
)

// CheckListeners binds every listen address of the configuration for a
// moment and reports those that cannot be bound by their configuration
// key, before the daemon creates or opens anything: a busy port must not
// leave a freshly created and seeded data directory behind.
func CheckListeners(cfg *Config) error {
	var errs []error
	seen := map[string]string{}
	for _, l := range []struct{ key, addr string }{
		{"pos.addr", cfg.POS.Addr}, {"gateway.addr", cfg.Gateway.Addr}, {"http.addr", cfg.HTTP.Addr},
	} {
		if _, port, err := net.SplitHostPort(l.addr); err == nil && port != "0" {
			if other, dup := seen[l.addr]; dup {
				errs = append(errs, fmt.Errorf("%s %s: the same address as %s", l.key, l.addr, other))
				continue
			}
			seen[l.addr] = l.key
		}
		ln, err := net.Listen("tcp", l.addr)
		if err != nil {
			errs = append(errs, listenError(l.key, l.addr, err))
			continue
		}
		_ = ln.Close()
	}
	return errors.Join(errs...)
}

// listenError names the configuration key of an address that cannot be
// bound, and what to do about the usual causes.
func listenError(key, addr string, err error) error {
	switch {
	case errors.Is(err, syscall.EADDRINUSE):
		return fmt.Errorf("%s %s: address already in use (another switchd, or another program: ss -ltnp 'sport = :PORT' names it)", key, addr)
	case errors.Is(err, syscall.EACCES):
		return fmt.Errorf("%s %s: permission denied (ports below 1024 need privileges; use a higher port)", key, addr)
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		return fmt.Errorf("%s %s: no interface of this machine has that address", key, addr)
	}
	return fmt.Errorf("%s %s: %w", key, addr, err)
}

// CheckConfig checks what a configuration needs from the machine without
// starting anything and without creating or changing a file: the LMK
// (present, private, well formed), the data directory, the listen
// addresses. It returns notes for what a start would create, and the
// problems found. A busy listen address is a note, not a problem: the
// daemon this file is meant for may be the one holding it.
func CheckConfig(cfg *Config) (notes []string, err error) {
	var errs []error
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	switch {
	case cfg.LMK.Env != "":
		lmk, err := hsm.LoadLMKEnv(cfg.LMK.Env)
		if err != nil {
			errs = append(errs, fmt.Errorf("lmk.env: %w", err))
		}
		lmk.Zero()
	default:
		if err := hsm.CheckLMKPath(cfg.LMK.File, cfg.DataDir); err != nil {
			errs = append(errs, fmt.Errorf("lmk.file: %w", err))
			break
		}
		if _, err := os.Stat(cfg.LMK.File); errors.Is(err, os.ErrNotExist) && cfg.LMK.CreateDemo {
			notes = append(notes, fmt.Sprintf("lmk.file %s does not exist: a start creates a DEMO key there", cfg.LMK.File))
			break
		}
		lmk, err := hsm.LoadLMKFile(cfg.LMK.File)
		if err != nil {
			errs = append(errs, fmt.Errorf("lmk.file: %w", err))
		}
		lmk.Zero()
	}
	switch st, err := os.Stat(cfg.DataDir); {
	case errors.Is(err, os.ErrNotExist):
		notes = append(notes, fmt.Sprintf("data_dir %s does not exist: a start creates it (and seeds it when the file has a seed)", cfg.DataDir))
	case err != nil:
		errs = append(errs, fmt.Errorf("data_dir %s: %w", cfg.DataDir, err))
	case !st.IsDir():
		errs = append(errs, fmt.Errorf("data_dir %s: not a directory", cfg.DataDir))
	}
	if err := CheckListeners(cfg); err != nil {
		notes = append(notes, err.Error())
	}
	return notes, errors.Join(errs...)
}
