package match

import (
	"bufio"
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// The crash test re-executes the test binary as a child that enrols in a
// tight loop and is killed with SIGKILL in the middle of it.
const crashChildEnv = "SRDGD_MATCH_CRASH_CHILD"

// crashChild runs in the child process: it opens the gallery in the directory
// named by the environment, takes the seed photo and its descriptor, and
// enrols them under new names forever, printing each name after its commit.
func crashChild() int {
	dir := os.Getenv(crashChildEnv)
	round := os.Getenv(crashChildEnv + "_ROUND")
	ctx := context.Background()
	g, err := Open(ctx, Options{Path: filepath.Join(dir, "gallery.db"), KeyFile: filepath.Join(dir, "key")})
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 2
	}
	var seed storedImage
	err = g.images(ctx, "WHERE p.name_key = ?", []any{g.nameKey("seed")}, func(s storedImage) error {
		if seed.jpeg == nil {
			seed = s
		}
		return nil
	})
	if err != nil || seed.jpeg == nil {
		fmt.Fprintln(os.Stderr, "child: no seed photo:", err)
		return 2
	}
	var model string
	var blob []byte
	if err := g.db.QueryRowContext(ctx, `SELECT model, vec FROM embeddings WHERE image_id = ?`, seed.id).Scan(&model, &blob); err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 2
	}
	plain, err := g.seal.Open(blob, embeddingAD(seed.id, model))
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 2
	}
	vec, _ := bytesVec(plain)
	for i := 0; ; i++ {
		name := fmt.Sprintf("crash-%s-%d", round, i)
		e := enrolment{source: "seed.jpg", jpeg: seed.jpeg, box: seed.box, emb: Embedding{Vector: vec, Model: model}}
		if _, _, err := g.enrolOne(ctx, name, e); err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			return 2
		}
		fmt.Println(name)
	}
}

func TestCrashConsistency(t *testing.T) {
	emb := testEmbedder(t)
	rows := celebaRows(t)
	dir := t.TempDir()
	key := filepath.Join(dir, "key")
	if err := GenerateKey(key); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	opts := Options{Path: filepath.Join(dir, "gallery.db"), KeyFile: key, Embedder: emb, Finder: FixedBox(celebaBox)}
	g, err := Open(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	res, err := g.Add(ctx, "seed", []Photo{{Source: rows[0].Image, Data: readCeleba(t, rows[0].Image)}})
	if err != nil || !res[0].Enrolled {
		t.Fatalf("seed enrolment: %v %+v", err, res)
	}
	g.Close()

	// crashRounds (20 without -race): with enrolOne deliberately split into two
	// transactions (person, then photo + descriptor) 20 rounds failed in 3 of
	// 4 runs; the kill lands at a random point of the child's loop.
	r := rand.New(rand.NewPCG(7, 11))
	for round := 0; round < crashRounds; round++ {
		// kill after a random number of commits: the child is then inside the
		// next enrolment (its loop does nothing else)
		killAfter := 3 + r.IntN(25)
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), crashChildEnv+"="+dir, fmt.Sprintf("%s_ROUND=%d", crashChildEnv, round))
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(out)
		var done []string
		for len(done) < killAfter && sc.Scan() {
			done = append(done, sc.Text())
		}
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		for sc.Scan() { // drain what the child printed before it died
			done = append(done, sc.Text())
		}
		werr := cmd.Wait()
		if len(done) < killAfter {
			t.Fatalf("round %d: child stopped after %d enrolments: %v\n%s", round, len(done), werr, stderr.String())
		}
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
			t.Fatalf("round %d: child was not killed by SIGKILL: %v", round, cmd.ProcessState)
		}

		g, err := Open(ctx, opts)
		if err != nil {
			t.Fatalf("round %d: reopening after the crash: %v", round, err)
		}
		rep, err := g.Check(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !rep.OK() {
			t.Fatalf("round %d: gallery inconsistent after kill -9: %v", round, rep.Problems)
		}
		people, err := g.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		have := map[string]Person{}
		for _, p := range people {
			have[p.Name] = p
		}
		for _, name := range done {
			p, ok := have[name]
			if !ok {
				t.Fatalf("round %d: %q was committed and printed but is missing after the crash", round, name)
			}
			if p.Images != 1 || p.Searchable != 1 {
				t.Fatalf("round %d: %q has %d photos, %d searchable, want 1 and 1", round, name, p.Images, p.Searchable)
			}
		}
		// at most one enrolment may have committed without being printed
		prefix := fmt.Sprintf("crash-%d-", round)
		n := 0
		for name := range have {
			if strings.HasPrefix(name, prefix) {
				n++
			}
		}
		if n != len(done) && n != len(done)+1 {
			t.Fatalf("round %d: %d people of this round in the gallery, %d printed", round, n, len(done))
		}
		t.Logf("round %d: killed after %d printed enrolments, %d in the gallery, check: %d people %d photos %d descriptors, ok",
			round, len(done), n, rep.People, rep.Images, rep.Embeddings)
		g.Close()
	}
}

// TestCheckFindsProblems makes sure Check is not blind: broken rows written
// behind the gallery's back are reported.
func TestCheckFindsProblems(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	g, err := Open(ctx, Options{Path: filepath.Join(dir, "g.db"), Plaintext: true})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	now := "2026-01-01T00:00:00Z"
	mustExec(t, g.db, `INSERT INTO people (id, name, name_key, created) VALUES (1, 'lonely', ?, ?)`, g.nameKey("lonely"), now)
	mustExec(t, g.db, `INSERT INTO people (id, name, name_key, created) VALUES (2, 'bare', ?, ?)`, g.nameKey("bare"), now)
	mustExec(t, g.db, `INSERT INTO images (id, person_id, jpeg, source, created) VALUES (1, 2, x'00', 'x.jpg', ?)`, now)
	rep, err := g.Check(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"1 people without photos", "1 photos without descriptors", "image 1 of \"bare\""}
	all := strings.Join(rep.Problems, "\n")
	for _, w := range want {
		if !strings.Contains(all, w) {
			t.Errorf("Check did not report %q; got:\n%s", w, all)
		}
	}
}

func mustExec(t *testing.T, db *sql.DB, q string, args ...any) {
	t.Helper()
	if _, err := db.Exec(q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}
