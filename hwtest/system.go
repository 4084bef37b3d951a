package hwtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"

	"github.com/srdgd/srdgd/match"
)

// checkGallery opens the gallery with the configured key. A gallery that does
// not exist yet is not created here (the daemon does that, as its own user);
// then only the key is checked.
func (o *Options) checkGallery(ctx context.Context) Check {
	g := o.Gallery
	c := Check{Name: "gallery", Values: map[string]any{"path": g.Path, "encrypted": g.Encrypt}}
	if g.Encrypt {
		c.Values["key_file"] = g.KeyFile
		if _, err := os.Stat(g.KeyFile); errors.Is(err, os.ErrNotExist) {
			c.Status = StatusWarn
			c.Message = fmt.Sprintf("no key file %s (match.key_file): the daemon runs but matches no face; create it with: srdgd gallery keygen", g.KeyFile)
			return c
		}
		if _, err := match.LoadKey(g.KeyFile); err != nil {
			c.Status, c.Message = StatusFail, fmt.Sprintf("%v (match.key_file)", err)
			return c
		}
	}
	if _, err := os.Stat(g.Path); errors.Is(err, os.ErrNotExist) {
		c.Status = StatusOK
		if g.Encrypt {
			c.Message = fmt.Sprintf("key %s is valid; %s does not exist yet (the daemon creates it)", g.KeyFile, g.Path)
		} else {
			c.Message = fmt.Sprintf("%s does not exist yet (the daemon creates it, unencrypted: match.encrypt is false)", g.Path)
		}
		return c
	}
	gal, err := match.Open(ctx, match.Options{Path: g.Path, KeyFile: g.KeyFile, Plaintext: !g.Encrypt})
	if err != nil {
		c.Status = StatusFail
		switch {
		case errors.Is(err, match.ErrWrongKey):
			c.Message = fmt.Sprintf("gallery %s does not open with the key in %s (match.key_file): wrong key file, or the gallery was made with another key", g.Path, g.KeyFile)
		case errors.Is(err, match.ErrEncryptionMode):
			c.Message = fmt.Sprintf("%v (match.encrypt is %v)", err, g.Encrypt)
		default:
			c.Message = err.Error()
		}
		return c
	}
	defer gal.Close()
	people, err := gal.List(ctx)
	if err != nil {
		c.Status, c.Message = StatusFail, fmt.Sprintf("gallery %s opens but cannot be read: %v", g.Path, err)
		return c
	}
	c.Values["people"] = len(people)
	c.Status = StatusOK
	if g.Encrypt {
		c.Message = fmt.Sprintf("%s opens with the key in %s: %d people", g.Path, g.KeyFile, len(people))
	} else {
		c.Message = fmt.Sprintf("%s opens (unencrypted): %d people", g.Path, len(people))
	}
	return c
}

// checkDisk compares the free space where dir lives (its nearest existing
// parent when it does not exist yet) with min.
func checkDisk(name, key, dir string, min uint64) Check {
	c := Check{Name: name, Values: map[string]any{"path": dir, "min_free_bytes": min}}
	if dir == "" {
		c.Status, c.Message = StatusSkip, key+" is not set"
		return c
	}
	at := existingParent(dir)
	var st unix.Statfs_t
	if err := unix.Statfs(at, &st); err != nil {
		c.Status, c.Message = StatusFail, fmt.Sprintf("%s %s: statfs %s: %v", key, dir, at, err)
		return c
	}
	free := st.Bavail * uint64(st.Bsize)
	c.Values["free_bytes"] = free
	switch {
	case free < min:
		c.Status = StatusFail
		c.Message = fmt.Sprintf("%s %s: %s free, below storage.min_free_bytes %s: no hits or spool entries would be written", key, dir, bytesStr(free), bytesStr(min))
	case free < 2*min:
		c.Status = StatusWarn
		c.Message = fmt.Sprintf("%s %s: %s free, less than twice storage.min_free_bytes %s", key, dir, bytesStr(free), bytesStr(min))
	default:
		c.Status = StatusOK
		c.Message = fmt.Sprintf("%s free (storage.min_free_bytes %s)", bytesStr(free), bytesStr(min))
		if at != dir {
			c.Message += fmt.Sprintf("; %s does not exist yet, measured at %s", dir, at)
		}
	}
	return c
}

func existingParent(dir string) string {
	d := filepath.Clean(dir)
	for {
		if _, err := os.Stat(d); err == nil {
			return d
		}
		p := filepath.Dir(d)
		if p == d {
			return d
		}
		d = p
	}
}

func bytesStr(b uint64) string {
	const gib = 1 << 30
	if b >= gib {
		return fmt.Sprintf("%.1f GiB", float64(b)/gib)
	}
	return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20))
}

// checkWritable writes and removes a file in the state folder, as the user
// running the check.
func checkWritable(dir string) Check {
	c := Check{Name: "state_dir", Values: map[string]any{"path": dir, "uid": os.Getuid()}}
	if dir == "" {
		c.Status, c.Message = StatusSkip, "storage.state_dir is not set"
		return c
	}
	if st, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		c.Status = StatusWarn
		c.Message = fmt.Sprintf("storage.state_dir %s does not exist yet (systemd's StateDirectory= or scripts/install.sh creates it)", dir)
		return c
	} else if err != nil {
		c.Status, c.Message = StatusFail, fmt.Sprintf("storage.state_dir %s: %v", dir, err)
		return c
	} else if !st.IsDir() {
		c.Status, c.Message = StatusFail, fmt.Sprintf("storage.state_dir %s is not a folder", dir)
		return c
	}
	f, err := os.CreateTemp(dir, ".hwtest-*")
	if err != nil {
		c.Status, c.Message = StatusFail, fmt.Sprintf("storage.state_dir %s is not writable by uid %d: %v", dir, os.Getuid(), unwrapPath(err))
		return c
	}
	name := f.Name()
	_, werr := f.Write([]byte("srdgd hwtest\n"))
	serr := f.Sync()
	f.Close()
	os.Remove(name)
	if err := errors.Join(werr, serr); err != nil {
		c.Status, c.Message = StatusFail, fmt.Sprintf("storage.state_dir %s: write: %v", dir, err)
		return c
	}
	c.Status, c.Message = StatusOK, fmt.Sprintf("%s is writable by uid %d", dir, os.Getuid())
	return c
}

// checkClock: hit records, certificates and MQTT timestamps need a sane
// clock. A year before 2025 means the clock was never set (no RTC battery,
// no NTP). Whether the kernel thinks it is synchronised comes from
// adjtimex(2) without a network call; when that is not allowed (systemd's
// ProtectClock=) it is left unknown.
func checkClock(now time.Time) Check {
	c := Check{Name: "clock", Values: map[string]any{"now": now.UTC().Format(time.RFC3339)}}
	if now.Year() < 2025 {
		c.Status = StatusFail
		c.Message = fmt.Sprintf("the clock says %s: set it (timedatectl set-ntp true, or a real-time clock)", now.UTC().Format(time.RFC3339))
		return c
	}
	var tx unix.Timex
	state, err := unix.Adjtimex(&tx)
	switch {
	case err != nil:
		c.Values["ntp_synchronised"] = "unknown"
		c.Status, c.Message = StatusOK, "the date is plausible; NTP state unknown: "+err.Error()
	case state == unix.TIME_ERROR || tx.Status&unix.STA_UNSYNC != 0:
		c.Values["ntp_synchronised"] = false
		c.Status, c.Message = StatusWarn, "the date is plausible but the kernel clock is not synchronised (enable NTP: timedatectl set-ntp true)"
	default:
		c.Values["ntp_synchronised"] = true
		c.Status, c.Message = StatusOK, "the date is plausible and the kernel clock is synchronised"
	}
	return c
}
