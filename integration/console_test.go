package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/ferryftp/ferry/admin/api"
	"github.com/ferryftp/ferry/client"
	"github.com/ferryftp/ferry/ftptest"
)

// browser is a headless Chromium driven through chromedp, collecting
// every error its pages print or throw.
type browser struct {
	t      *testing.T
	ctx    context.Context
	mu     sync.Mutex
	errors []string
}

func startBrowser(t *testing.T) *browser {
	path := ""
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			path = p
			break
		}
	}
	if path == "" {
		if os.Getenv("FERRY_INTEROP") != "" {
			t.Fatal("chromium is not installed (FERRY_INTEROP=1)")
		}
		t.Skip("chromium is not installed")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.NoSandbox,
		chromedp.DisableGPU, chromedp.WindowSize(1280, 900), chromedp.UserDataDir(t.TempDir()))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	b := &browser{t: t, ctx: ctx}
	// The first call starts the browser, for as long as its context lives:
	// no timeout on it.
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("chromium: %v", err)
	}
	msgs := chromedp.Console(ctx)
	go func() {
		for m, err := range msgs {
			if err != nil {
				return
			}
			if m.Type == chromedp.ConsoleError || m.Type == chromedp.ConsoleException {
				b.mu.Lock()
				b.errors = append(b.errors, m.String()+" "+m.URL)
				b.mu.Unlock()
			}
		}
	}()
	return b
}

// do runs steps, each within a minute.
func (b *browser) do(steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, time.Minute)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.t.Fatalf("browser: %v (page errors: %v)", err, b.takeErrors())
	}
}

// get runs one action for its value.
func get[T any](b *browser, a chromedp.Action[T]) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, time.Minute)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		b.t.Fatalf("browser: %v (page errors: %v)", err, b.takeErrors())
	}
	return v
}

func (b *browser) text(sel string) string { return get(b, chromedp.Text(chromedp.CSS(sel))) }

// clear empties the input sel.
func (b *browser) clear(sel string) {
	get(b, chromedp.Evaluate[bool](`(document.querySelector(`+strconv.Quote(sel)+`).value = "") === ""`))
}

// number evaluates a JavaScript expression to a number.
func (b *browser) number(expr string) float64 { return get(b, chromedp.Evaluate[float64](expr)) }

// until waits, at most 20 s, for a JavaScript expression to be true; a
// page that navigates meanwhile (a form posted) is polled again.
func (b *browser) until(expr string) {
	b.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		ctx, cancel := context.WithDeadline(b.ctx, deadline)
		_, err := chromedp.Run(ctx, chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(time.Until(deadline))))
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) || !strings.Contains(err.Error(), "-32000") {
			b.t.Fatalf("browser: waiting for %s: %v (page errors: %v)", expr, err, b.takeErrors())
		}
		time.Sleep(50 * time.Millisecond) // the page being replaced
	}
}

// takeErrors returns the page errors seen so far, and forgets them.
func (b *browser) takeErrors() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	e := b.errors
	b.errors = nil
	return e
}

// noErrors fails the test when a page printed or threw an error.
func (b *browser) noErrors(where string) {
	b.t.Helper()
	if e := b.takeErrors(); len(e) > 0 {
		b.t.Errorf("%s: page errors: %v", where, e)
	}
}

// screenshot saves the page as name.png: in $FERRY_SCREENSHOTS (docs/
// when the screenshots are made again), else in a temporary directory.
func (b *browser) screenshot(name string) {
	dir := os.Getenv("FERRY_SCREENSHOTS")
	if dir == "" {
		dir = b.t.TempDir()
	}
	png := get(b, chromedp.FullScreenshot(100))
	if len(png) < 1000 {
		b.t.Fatalf("screenshot %s: %d bytes", name, len(png))
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		b.t.Fatal(err)
	}
}

// css is a CSS selector.
func css(sel string) chromedp.CSS { return chromedp.CSS(sel) }

// manyUsers writes a users file of alice and n users more, all with one
// password hash (hashing 10,000 passwords would take minutes).
func manyUsers(t *testing.T, file string, n int) {
	t.Helper()
	ferryUser(t, file, "alice-pw", "add", "alice", "--home", "alice")
	b, _ := os.ReadFile(file)
	hash := strings.Split(strings.Split(string(b), "password = \"")[1], "\"")[0]
	var buf bytes.Buffer
	buf.Write(b)
	for i := range n {
		fmt.Fprintf(&buf, "\n[[user]]\nname = \"bulk%05d\"\npassword = \"%s\"\nhome = \"bulk\"\n", i, hash)
	}
	os.WriteFile(file, buf.Bytes(), 0o600)
}

// TestConsole drives the web console in headless Chromium against a real
// `ferry serve`: a wrong password refused and counted, the dashboard
// following a slow upload, that session ended from the console (421, old
// file intact), a user created in the form logging in at once and their
// quota changed in the form, a ban lifted, 10,000 users paginated, a
// phone-sized screen, and no page printing an error.
func TestConsole(t *testing.T) {
	e := startAdminWith(t, "[defender]\nthreshold = 2\nallow = []\n", func(usersFile string) { manyUsers(t, usersFile, 10000) })
	b := startBrowser(t)
	consoleLogin(t, e, b)
	consoleEndUpload(t, e, b)
	consoleUserForm(t, e, b)
	consoleManyUsers(t, e, b)
	consoleBanLift(t, e, b)
	consoleLayout(t, e, b)
}

// consoleLogin logs in: a wrong password first, refused and scored by the defender.
func consoleLogin(t *testing.T, e *adminEnv, b *browser) {
	var text string
	// A wrong password: refused, said so, and scored by the defender.
	b.do(chromedp.Navigate(e.base+"/console/"), chromedp.WaitVisible(css("#login")),
		chromedp.SendKeys(css("#name"), "root"), chromedp.SendKeys(css("#password"), "wrong"),
		chromedp.Submit(css("#login")), chromedp.WaitVisible(css("#error")))
	text = b.text("#error")
	if !strings.Contains(text, "wrong name or password") {
		t.Fatalf("wrong password: %q", text)
	}
	b.takeErrors() // the 401 of that page is logged by the browser
	var bans []api.Ban
	json.Unmarshal(e.want(200, call{method: "GET", path: "/api/v1/bans", tok: e.token}), &bans)
	if len(bans) != 1 || bans[0].Network != "127.0.0.1/32" || bans[0].Score != 1 {
		t.Fatalf("the wrong admin password is not scored: %+v", bans)
	}
	e.want(204, call{method: "DELETE", path: "/api/v1/bans/127.0.0.1", tok: e.token})
	b.do(chromedp.SendKeys(css("#name"), "root"), chromedp.SendKeys(css("#password"), "root-pw"),
		chromedp.Submit(css("#login")), chromedp.WaitVisible(css("#stat-sessions")))
	b.noErrors("dashboard")

}

// consoleEndUpload follows a slow upload on the dashboard, then ends its session from the sessions page: 421 for the client, the old file intact.
func consoleEndUpload(t *testing.T, e *adminEnv, b *browser) {
	var text string
	// A slow 200 MiB upload over an old file: the dashboard shows it
	// growing.
	old, done := e.slowOverwrite("site.tar", 64<<10)
	const bytesCell = `Number(document.querySelector('#transfers tr[data-session] .bytes')?.dataset.bytes || 0)`
	var first, later float64
	b.until(bytesCell + ` > 0 && document.body.dataset.live === "1"`)
	first = b.number(bytesCell)
	b.until(bytesCell + ` > ` + fmt.Sprint(first))
	later = b.number(bytesCell)
	if later <= first {
		t.Fatalf("the dashboard's byte count does not grow: %v then %v", first, later)
	}
	b.until(`document.getElementById("chart-up").getAttribute("points").split(" ").length > 1`)
	text = b.text("#transfers tbody")
	if !strings.Contains(text, "alice") || !strings.Contains(text, "/site.tar") || !strings.Contains(text, "upload") {
		t.Errorf("the dashboard's transfer: %q", text)
	}
	b.screenshot("console-dashboard")
	b.noErrors("dashboard with a transfer")

	// End alice's session from the sessions page.
	b.do(chromedp.Navigate(e.base+"/console/sessions?q=alice"), chromedp.WaitVisible(css("#sessions")),
		chromedp.Click(css(`#sessions tr[data-session] button.danger`)), chromedp.WaitVisible(css(".msg")))
	text = b.text(".msg")
	if !strings.Contains(text, "ended") {
		t.Errorf("after End: %q", text)
	}
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "421") {
			t.Errorf("the upload of the ended session: %v, want 421", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the ended session's upload goes on")
	}
	if got, err := os.ReadFile(filepath.Join(e.wd, "alice", "site.tar")); err != nil || !bytes.Equal(got, old) {
		t.Errorf("site.tar after its overwrite was ended: %d bytes, %v", len(got), err)
	}
	b.noErrors("sessions")

}

// consoleUserForm creates dave in the form, who logs in over FTP at once, and sets his quota in the form: a larger upload is refused with 552.
func consoleUserForm(t *testing.T, e *adminEnv, b *browser) {
	ctx := context.Background()
	var text string
	// Create dave in the form: he logs in over FTP at once.
	b.do(chromedp.Navigate(e.base+"/console/users/new"), chromedp.WaitVisible(css("#user-form")),
		chromedp.SendKeys(css("#name"), "dave"), chromedp.SendKeys(css("#password"), "dave-pw"), chromedp.SendKeys(css("#home"), "dave"),
		chromedp.Click(css("#save")), chromedp.WaitVisible(css(".msg")))
	text = b.text(".msg")
	if !strings.Contains(text, "dave created") {
		t.Fatalf("after Create: %q", text)
	}
	dave, err := client.Dial(ctx, e.ftp, &client.Config{User: "dave", Password: "dave-pw", Retries: -1})
	if err != nil {
		t.Fatalf("dave over FTP right after the form: %v", err)
	}
	dave.Close()
	// His quota set in the form: a larger upload is refused with 552.
	b.clear("#quota_bytes")
	b.do(chromedp.SendKeys(css("#quota_bytes"), "8KiB"), chromedp.Click(css("#save")))
	b.until(`document.querySelector(".msg")?.textContent.includes("dave saved")`)
	if err := storeAs(ctx, e.ftp, "dave", "dave-pw", 16<<10); err == nil || !strings.Contains(err.Error(), "552") {
		t.Errorf("16 KiB over the 8 KiB quota set in the form: %v, want 552", err)
	}
	b.noErrors("user form")

}

// consoleManyUsers pages and searches 10,000 users.
func consoleManyUsers(t *testing.T, e *adminEnv, b *browser) {
	var text string
	// 10,000 users: paginated and searchable.
	b.do(chromedp.Navigate(e.base+"/console/users"), chromedp.WaitVisible(css("#users")))
	text = b.text(".pager")
	if !strings.Contains(text, "Page 1 of 201") {
		t.Errorf("the users' pager: %q", text)
	}
	if n := b.number(`document.querySelectorAll("#users tbody tr").length`); n != 50 {
		t.Errorf("%v users on a page, want 50", n)
	}
	b.do(chromedp.SendKeys(css("#q"), "bulk09999"), chromedp.Submit(css("#q")), chromedp.WaitVisible(css(`#users tr[data-user="bulk09999"]`)))
	b.do(chromedp.Navigate(e.base+"/console/users"), chromedp.WaitVisible(css("#users")))
	b.screenshot("console-users")
	b.noErrors("users")

}

// consoleBanLift lifts a ban: the address is greeted again.
func consoleBanLift(t *testing.T, e *adminEnv, b *browser) {
	// A ban lifted from the console: the address is greeted again.
	guess(t, e.ftp, "127.0.0.2", "alice", 2)
	if code, _ := ftptest.DialFrom(t, e.ftp, "127.0.0.2").Read(); code == 220 {
		t.Fatal("the guesser is not banned")
	}
	b.do(chromedp.Navigate(e.base+"/console/bans"), chromedp.WaitVisible(css(`#bans tr[data-network="127.0.0.2/32"]`)),
		chromedp.Click(css(`#bans tr[data-network="127.0.0.2/32"] button`)), chromedp.WaitVisible(css(".msg")))
	if code, _ := ftptest.DialFrom(t, e.ftp, "127.0.0.2").Read(); code != 220 {
		t.Errorf("after the ban was lifted in the console: %d", code)
	}
	b.noErrors("bans")

}

// consoleLayout checks 100 sessions and more, labels, a phone screen, and logging out.
func consoleLayout(t *testing.T, e *adminEnv, b *browser) {
	// 100 sessions and more: the sessions page pages them, and every input of the
	// console has a label (read by a screen reader, reached by Tab).
	for range 99 {
		f := ftptest.DialFrom(t, e.ftp, "127.0.0.4")
		if code, _ := f.Read(); code != 220 {
			t.Fatalf("session for the list: %d", code)
		}
	}
	var sessions api.Page[api.Session]
	json.Unmarshal(e.want(200, call{method: "GET", path: "/api/v1/sessions", tok: e.token}), &sessions)
	if sessions.Total < 100 {
		t.Fatalf("%d sessions open, want 100 or more", sessions.Total)
	}
	b.do(chromedp.Navigate(e.base+"/console/sessions"), chromedp.WaitVisible(css("#sessions")))
	if text, want := b.text(".pager"), fmt.Sprintf("Page 1 of %d", (sessions.Total+49)/50); !strings.Contains(text, want) {
		t.Errorf("%d sessions: pager %q, want %q", sessions.Total, text, want)
	}
	if n := b.number(`document.querySelectorAll("#sessions tbody tr").length`); n != 50 {
		t.Errorf("%v sessions on a page, want 50", n)
	}
	for _, page := range []string{"/console/sessions", "/console/users/new", "/console/users/alice", "/console/bans", "/console/users"} {
		b.do(chromedp.Navigate(e.base+page), chromedp.WaitVisible(css("main")))
		unlabelled := get(b, chromedp.Evaluate[string](`Array.from(document.querySelectorAll("input:not([type=hidden]), select, textarea")).filter(e => e.labels.length === 0).map(e => e.id || e.name).join(" ")`))
		unnamed := get(b, chromedp.Evaluate[string](`Array.from(document.querySelectorAll("button, a")).filter(e => !(e.getAttribute("aria-label") || e.textContent.trim())).map(e => e.outerHTML).join(" ")`))
		if unlabelled != "" || unnamed != "" {
			t.Errorf("%s: inputs without a label %q, buttons or links without a name %q", page, unlabelled, unnamed)
		}
	}

	// A phone: nothing wider than the screen, the pages still usable.
	b.do(chromedp.EmulateViewport(390, 844))
	for _, page := range []string{"/console/", "/console/sessions", "/console/users", "/console/users/alice", "/console/bans"} {
		b.do(chromedp.Navigate(e.base+page), chromedp.WaitVisible(css("main")))
		if over := b.number(`document.documentElement.scrollWidth - window.innerWidth`); over > 0 {
			wide := get(b, chromedp.Evaluate[string](`Array.from(document.querySelectorAll("body *")).filter(e => e.getBoundingClientRect().right > innerWidth + 1).map(e => e.tagName + "." + e.className + "#" + e.id).slice(0, 8).join(" ")`))
			t.Errorf("%s on a phone: %v pixels wider than the screen (%s)", page, over, wide)
		}
	}
	b.noErrors("phone")
	// Logging out ends the session.
	b.do(chromedp.Click(css(".logout button")), chromedp.WaitVisible(css("#login")))
	b.do(chromedp.Navigate(e.base+"/console/users"), chromedp.WaitVisible(css("#login")))
	if n := b.number(`document.querySelectorAll("#users").length`); n != 0 {
		t.Error("the users page shows after logout")
	}
}
