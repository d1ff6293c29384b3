//! End-to-end proof of file isolation (SPEC §4): a real `alca __serve-view` FUSE server
//! serves a project without its secrets, and a real docker container (busybox, no network,
//! alca's default capabilities) bind-mounts the view as `/workspace`.
//!
//! Checked from inside the container: excluded names are absent from listings, unreadable by
//! exact name, through symlinks, by `find`/`grep -r` over the whole filesystem, and absent from
//! mountinfo; matching files created on the host later stay invisible; everything else is
//! live both ways (thousands of files, a 50 MB file, edits, renames, deletes); writes to
//! excluded names are refused; a dead server shows ENOTCONN, never the raw source, and a
//! restart recovers. Needs root and docker (`tests/env/setup.sh`).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use alca::exclude::fuse_engine::FuseEngine;
use alca::exclude::view_spec::ViewSpec;
use alca::exclude::{ViewEngine, ViewHandle, ViewStatus};
use alca_e2e::docker::{docker_available, docker_ok, Container, GIT_IMAGE, TEST_IMAGE};
use alca_e2e::view::{
    alca_bin, eventually, process_alive, run, sha256, view_mounted, write, ProjectTree,
    HIDDEN_NAMES, PATTERNS,
};

const SECOND: Duration = Duration::from_secs(1);

fn patterns() -> Vec<String> {
    PATTERNS.iter().map(|p| p.to_string()).collect()
}

fn ready() -> bool {
    alca_e2e::privilege::require_root("the exclude suite (docker, FUSE allow_other)");
    assert!(
        docker_available(),
        "docker is not running: run `bash tests/env/setup.sh` first"
    );
    true
}

/// A project, its running view and a container using it; torn down in that reverse order.
struct Env {
    tree: ProjectTree,
    engine: FuseEngine,
    handle: ViewHandle,
    container: Container,
}

impl Env {
    fn start(tag: &str) -> Env {
        Env::start_with(tag, &patterns())
    }

    fn start_with(tag: &str, patterns: &[String]) -> Env {
        Env::start_image(tag, patterns, TEST_IMAGE)
    }

    fn start_image(tag: &str, patterns: &[String], image: &str) -> Env {
        let tree = ProjectTree::create(tag).expect("project tree");
        let engine = FuseEngine::with_program(alca_bin().expect("alca binary"));
        let handle = engine
            .start(tree.root(), patterns, &tree.state_dir())
            .expect("view starts");
        assert!(handle.fresh);
        let container = start_container_on(image, tag, &handle.mountpoint);
        Env {
            tree,
            engine,
            handle,
            container,
        }
    }

    fn sh(&self, script: &str) -> String {
        self.container.sh(script).expect("docker exec")
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        let _ = docker_ok(&["rm", "-f", &self.container.name]);
        let _ = self.engine.stop(&self.tree.state_dir());
    }
}

fn start_container(tag: &str, mountpoint: &Path) -> Container {
    start_container_on(TEST_IMAGE, tag, mountpoint)
}

/// A container of `image` with alca's default capabilities and the view as `/workspace`.
fn start_container_on(image: &str, tag: &str, mountpoint: &Path) -> Container {
    let name = format!("alca-e2e-excl-{tag}-{}", std::process::id());
    let volume = format!("{}:/workspace", mountpoint.display());
    let extra = [
        "--cap-drop",
        "ALL",
        "--cap-add",
        "CHOWN",
        "--cap-add",
        "DAC_OVERRIDE",
        "--cap-add",
        "FOWNER",
        "--cap-add",
        "KILL",
        "--cap-add",
        "SETUID",
        "--cap-add",
        "SETGID",
        "-v",
        &volume,
        "-w",
        "/workspace",
    ];
    Container::start_image(image, &name, "none", &extra, &["sleep", "900"])
        .expect("container starts")
}

/// Lines of `ls -a` output that equal `name`.
fn listed(out: &str, name: &str) -> bool {
    out.lines().any(|l| l.trim() == name)
}

#[test]
fn excluded_paths_are_absent_and_unreadable_by_any_means() {
    if !ready() {
        return;
    }
    let env = Env::start("hide");
    let marker = env.tree.marker.clone();
    let ls = env.sh("ls -a /workspace /workspace/app /workspace/app/certs /workspace/.alca/views");
    assert!(
        listed(&ls, "README.md") && listed(&ls, "main.rs"),
        "visible files listed: {ls}"
    );
    for name in HIDDEN_NAMES {
        assert!(!listed(&ls, name), "{name} listed:\n{ls}");
    }
    assert!(
        !listed(&ls, "e2e"),
        "the view's own state dir is hidden:\n{ls}"
    );

    for rel in [
        ".env",
        ".env.local",
        "app/.env",
        "app/secrets",
        "app/secrets/db.txt",
        "id.key",
        "app/certs/server.key",
        "node_modules/left-pad/index.js",
        "envlink",
        "secretlink/db.txt",
    ] {
        let out = env.sh(&format!("cat /workspace/{rel} 2>&1; echo rc=$?"));
        assert!(out.contains("rc=1"), "reading {rel} must fail: {out}");
        assert!(!out.contains(&marker), "{rel} leaked: {out}");
    }
    let out = env.sh(
        "ln -s /workspace/.env /tmp/l1; cat /tmp/l1; ln -s ../.env /workspace/app/l2; \
         cat /workspace/app/l2; cd /workspace/app && cat ../.env; stat /workspace/.env",
    );
    assert!(
        !out.contains(&marker),
        "symlink/relative access leaked: {out}"
    );

    let found = env.sh(
        "find / -path /proc -prune -o -path /sys -prune -o \\( -name .env -o -name '.env.*' \
         -o -name '*.key' -o -name secrets -o -name node_modules \\) -print",
    );
    assert_eq!(found.trim(), "", "find located excluded names");
    let grep = env.sh(&format!(
        "timeout 120 sh -c 'for d in /*; do case $d in /proc|/sys|/dev) ;; *) grep -rl {marker} $d \
         2>/dev/null;; esac; done'; echo grep-done"
    ));
    assert_eq!(
        grep.trim(),
        "grep-done",
        "secret content found in the container"
    );

    // /proc: the pattern file is written from two halves so no command line holds the marker.
    let (half1, half2) = marker.split_at(marker.len() / 2);
    let procs = env.sh(&format!(
        "printf %s%s '{half1}' '{half2}' > /tmp/pat; grep -qaFf /tmp/pat /tmp/pat && echo grep-works; \
         cat /proc/1/root/workspace/.env /proc/self/root/workspace/app/.env /proc/1/cwd/.env 2>&1; \
         for f in /proc/mounts /proc/self/mountinfo /proc/1/mountinfo /proc/[0-9]*/environ \
         /proc/[0-9]*/cmdline /proc/[0-9]*/maps; do grep -qaFf /tmp/pat $f 2>/dev/null && echo HIT:$f; \
         done; ls -l /proc/[0-9]*/fd /proc/[0-9]*/cwd /proc/[0-9]*/root 2>/dev/null; echo proc-done"
    ));
    assert!(
        procs.contains("grep-works") && procs.contains("proc-done"),
        "the /proc scan ran: {procs}"
    );
    assert!(!procs.contains("HIT:"), "secret found under /proc: {procs}");
    assert!(
        !procs.contains(&marker),
        "secret read through /proc: {procs}"
    );
    assert!(
        !procs.contains(&*env.tree.root().to_string_lossy()),
        "/proc reveals the source path: {procs}"
    );

    let mountinfo = env.sh("cat /proc/self/mountinfo");
    assert!(
        mountinfo.contains("alca-view"),
        "workspace is the view: {mountinfo}"
    );
    assert!(!mountinfo.contains(&marker));
    let src = env.tree.root().to_string_lossy().into_owned();
    assert!(
        !mountinfo.contains(&src),
        "mountinfo reveals the source path: {mountinfo}"
    );
}

#[test]
fn matching_files_created_on_the_host_later_stay_invisible() {
    if !ready() {
        return;
    }
    let env = Env::start("late");
    let secret = env.tree.marker.as_bytes();
    write(&env.tree.path("late/.env"), secret).expect("write");
    write(&env.tree.path("late/secrets/token"), secret).expect("write");
    write(&env.tree.path("late.key"), secret).expect("write");
    write(&env.tree.path("late/.env.production"), secret).expect("write");
    write(&env.tree.path("late/visible.txt"), b"hello").expect("write");
    let out = env.sh(
        "i=0; until [ -f /workspace/late/visible.txt ] || [ $i -ge 20 ]; do usleep 50000; \
         i=$((i+1)); done; cat /workspace/late/visible.txt; echo; \
         i=0; while [ $i -lt 20 ]; do for p in late/.env late/secrets late/secrets/token late.key \
         late/.env.production; do [ -e /workspace/$p ] && echo LEAK:$p; done; usleep 50000; \
         i=$((i+1)); done; ls -a /workspace /workspace/late; cat /workspace/late/.env \
         /workspace/late.key /workspace/late/secrets/token 2>&1",
    );
    assert!(
        out.contains("hello"),
        "a normal file created on the host shows: {out}"
    );
    assert!(!out.contains("LEAK"), "late excluded file visible: {out}");
    assert!(
        !out.contains(&env.tree.marker),
        "late secret readable: {out}"
    );
    for name in [".env", "secrets", "late.key", ".env.production"] {
        assert!(!listed(&out, name), "{name} listed: {out}");
    }
}

#[test]
fn container_changes_reach_the_host_byte_identical() {
    if !ready() {
        return;
    }
    let env = Env::start("c2h");
    let out = env.sh("mkdir -p /workspace/c && i=1; while [ $i -le 3000 ]; do \
         echo file-$i > /workspace/c/f$(printf %04d $i); i=$((i+1)); done; echo made");
    assert!(out.contains("made"), "{out}");
    let dir = env.tree.path("c");
    assert!(
        eventually(SECOND, || count(&dir) == 3000),
        "3000 files on the host"
    );
    for i in 1..=3000 {
        let got = std::fs::read_to_string(dir.join(format!("f{i:04}"))).expect("read");
        assert_eq!(got, format!("file-{i}\n"));
    }
    let sum = env.sh("dd if=/dev/urandom of=/workspace/c/big bs=1M count=50 2>/dev/null; sha256sum /workspace/c/big");
    let container_sum = sum.split_whitespace().next().unwrap_or("").to_string();
    assert_eq!(container_sum.len(), 64, "{sum}");
    assert!(eventually(SECOND, || sha256(&dir.join("big"))
        .ok()
        .as_deref()
        == Some(&*container_sum)));
    assert_eq!(
        std::fs::metadata(dir.join("big")).expect("big").len(),
        50 << 20
    );

    env.sh(
        "echo edited >> /workspace/README.md; mv /workspace/c/f0001 /workspace/c/renamed; \
            rm /workspace/c/f0002; mkdir /workspace/c/sub; rmdir /workspace/c/sub",
    );
    let readme = env.tree.path("README.md");
    assert!(eventually(SECOND, || std::fs::read(&readme)
        .ok()
        .as_deref()
        == Some(b"# demo\nedited\n".as_slice())));
    assert!(eventually(SECOND, || !dir.join("f0001").exists()
        && !dir.join("f0002").exists()));
    assert_eq!(
        std::fs::read(dir.join("renamed")).expect("renamed"),
        b"file-1\n"
    );
    assert!(!dir.join("sub").exists());
}

#[test]
fn host_changes_reach_the_container_byte_identical() {
    if !ready() {
        return;
    }
    let env = Env::start("h2c");
    let dir = env.tree.path("h");
    for i in 1..=3000 {
        write(
            &dir.join(format!("f{i:04}")),
            format!("host-{i}\n").as_bytes(),
        )
        .expect("write");
    }
    let big: Vec<u8> = (0..(50u32 << 20))
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    write(&dir.join("big"), &big).expect("big");
    let host_cat = run(
        "sh",
        &["-c", &format!("cd {} && cat f* | sha256sum", dir.display())],
    )
    .expect("cat");
    let out = env.sh("cd /workspace/h && ls | wc -l && cat f* | sha256sum && sha256sum big");
    let host_big = sha256(&dir.join("big")).expect("sha");
    assert!(
        out.lines().next().is_some_and(|l| l.trim() == "3001"),
        "file count: {out}"
    );
    assert!(
        out.contains(host_cat.split_whitespace().next().unwrap_or("?")),
        "contents differ: {out}"
    );
    assert!(out.contains(&host_big), "big file differs: {out}");

    // The container has the file cached; a same-size host edit must still show.
    assert!(env.sh("cat /workspace/h/f0003").contains("host-3"));
    std::fs::write(dir.join("f0003"), b"HOST-3\n").expect("edit");
    std::fs::rename(dir.join("f0004"), dir.join("moved")).expect("rename");
    std::fs::remove_file(dir.join("f0005")).expect("delete");
    let out = env.sh(
        "i=0; until [ -f /workspace/h/moved ] && [ ! -e /workspace/h/f0005 ] || [ $i -ge 20 ]; \
         do usleep 50000; i=$((i+1)); done; cat /workspace/h/f0003 /workspace/h/moved; \
         ls /workspace/h/f0004 /workspace/h/f0005 2>&1",
    );
    assert!(out.contains("HOST-3"), "edit visible: {out}");
    assert!(out.contains("host-4"), "rename visible: {out}");
    assert!(
        !out.contains("host-3") && !out.contains("host-5"),
        "stale content: {out}"
    );
    assert_eq!(
        out.matches("No such file").count(),
        2,
        "old names gone: {out}"
    );
}

/// Directories are listed without opendir requests where the kernel supports it, and the
/// kernel then keeps every listing: a watched directory's is dropped by the watch, an
/// unwatched one's (here: a view whose source is another view, not a local filesystem, so
/// nothing is watched) when the kernel sees the directory's mtime change, its attributes
/// lasting 100 ms. Either way a listing the container holds must show host creations and
/// removals within a second, and never a name the patterns exclude.
#[test]
fn cached_listings_follow_host_changes_watched_or_not() {
    if !ready() {
        return;
    }
    let env = Env::start("lsfollow");
    let dir = env.tree.path("l");
    for i in 0..200 {
        write(&dir.join(format!("old{i}")), b"x\n").expect("write");
    }
    let nested = NestedView::start(&env);
    let nested_container = start_container("lsnested", &nested.handle.mountpoint);
    let sides = [
        ("watched", &env.container),
        ("unwatched", &nested_container),
    ];
    // Each side lists the directory repeatedly, so its listing is cached when the host acts.
    let wait_for = |c: &Container, cond: &str| {
        c.sh(&format!(
            "cd /workspace/l && i=0; until {cond} || [ $i -ge 20 ]; do ls -a > /dev/null; \
             usleep 50000; i=$((i+1)); done; ls -a"
        ))
        .expect("exec")
    };
    for (round, (side, c)) in sides.iter().enumerate() {
        let listing = c
            .sh("ls -a /workspace/l && ls -a /workspace/l")
            .expect("exec");
        assert!(listed(&listing, "old199"), "{side}: {listing}");
        let new = format!("new{round}");
        write(&dir.join(&new), b"n\n").expect("create");
        write(&dir.join(".env"), env.tree.marker.as_bytes()).expect("create excluded");
        let out = wait_for(c, &format!("ls | grep -qx {new}"));
        assert!(
            listed(&out, &new),
            "{side}: host creation not listed: {out}"
        );
        assert!(!listed(&out, ".env"), "{side}: excluded name listed: {out}");
        std::fs::remove_file(dir.join(format!("old{round}"))).expect("remove");
        let out = wait_for(c, &format!("! ls | grep -qx old{round}"));
        assert!(
            !listed(&out, &format!("old{round}")),
            "{side}: host removal still listed: {out}"
        );
        assert!(listed(&out, "old199"), "{side}: {out}");
        std::fs::remove_file(dir.join(".env")).expect("remove excluded");
    }
    drop(nested_container);
    drop(nested);
}

/// Names the container looked up absent (which the kernel keeps where the directory is
/// watched) show within 1 s once the host makes them: a create, a rename into the name, and
/// a hard link bringing back an object the view still knows under that name (the container
/// holds it open). In a view and in a view of a view (nothing watched there, nothing kept).
#[test]
fn names_looked_up_absent_show_once_the_host_makes_them() {
    if !ready() {
        return;
    }
    let env = Env::start("negshow");
    let nested = NestedView::start(&env);
    let nested_container = start_container("negnested", &nested.handle.mountpoint);
    let sides = [
        ("watched", &env.container),
        ("unwatched", &nested_container),
    ];
    let names = ["gone", "moved", "f"];
    // Polls (at most 20 times, 50 ms apart: 1 s) until `cond`, then prints which of the
    // names exist (by lookups only: a listing would tell the view the other names).
    let poll = |c: &Container, dir: &str, cond: &str| {
        c.sh(&format!(
            "cd /workspace/{dir} && i=0; until {cond} || [ $i -ge 20 ]; do usleep 50000; \
             i=$((i+1)); done; for n in {}; do test -e $n && echo $n; done; true",
            names.join(" ")
        ))
        .expect("exec")
    };
    for (side, c) in sides {
        let dir = env.tree.path(side);
        std::fs::create_dir(&dir).expect("mkdir");
        write(&dir.join("f"), b"f\n").expect("write");
        let out = poll(c, side, "test -e f");
        assert!(listed(&out, "f"), "{side}: {out}");
        // Held open, so the view keeps knowing the object under the name it was looked up by.
        c.sh(&format!(
            "cd /workspace/{side} && (exec 3< f; exec sleep 30) > /dev/null 2>&1 &"
        ))
        .expect("exec");
        std::fs::hard_link(dir.join("f"), dir.join("keep")).expect("link");
        std::fs::remove_file(dir.join("f")).expect("remove");
        write(&dir.join("tmp"), b"t\n").expect("write");
        // Looked up absent, several times each, so the kernel keeps them where it may.
        let out = poll(c, side, "! test -e f && ! test -e gone && ! test -e moved");
        for name in names {
            assert!(
                !listed(&out, name),
                "{side}: {name} before the host made it: {out}"
            );
        }
        write(&dir.join("gone"), b"g\n").expect("create");
        std::fs::rename(dir.join("tmp"), dir.join("moved")).expect("rename");
        std::fs::hard_link(dir.join("keep"), dir.join("f")).expect("link back");
        let out = poll(c, side, "test -e gone && test -e moved && test -e f");
        for name in names {
            assert!(
                listed(&out, name),
                "{side}: {name} not shown within 1 s: {out}"
            );
        }
        let content = c
            .sh(&format!("cat /workspace/{side}/gone /workspace/{side}/f"))
            .expect("exec");
        assert_eq!(content, "g\nf\n", "{side}");
    }
    drop(nested_container);
    drop(nested);
}

/// A view whose source is another view's mountpoint (not a local filesystem: nothing in it
/// is watched); stopped on drop, before the view it serves from.
struct NestedView<'a> {
    engine: &'a FuseEngine,
    state: tempfile::TempDir,
    handle: ViewHandle,
}

impl<'a> NestedView<'a> {
    fn start(env: &'a Env) -> NestedView<'a> {
        let state = tempfile::Builder::new()
            .prefix("alca-e2e-excl-lsnested-")
            .tempdir_in("/tmp")
            .expect("state dir");
        let handle = env
            .engine
            .start(&env.handle.mountpoint, &patterns(), state.path())
            .expect("nested view starts");
        NestedView {
            engine: &env.engine,
            state,
            handle,
        }
    }
}

impl Drop for NestedView<'_> {
    fn drop(&mut self) {
        if let Err(e) = self.engine.stop(self.state.path()) {
            eprintln!("nested view did not stop: {e}");
        }
    }
}

/// Shell steps: tell the host the files are open (`ready`), wait (bounded) for its `go`.
const WAIT_FOR_GO: &str =
    "touch ready && i=0; until [ -e go ] || [ $i -ge 200 ]; do usleep 50000; i=$((i+1)); done;";

/// Runs `script` in the container (it opens its files in `dir`, then [`WAIT_FOR_GO`]),
/// makes the `host` changes once it is ready, then, past the guarantee's bound, appends the
/// tree's marker to `dir/.env` (content the container must never see) and lets the script
/// go on; its output.
fn while_the_host_changes(env: &Env, dir: &Path, script: &str, host: impl FnOnce()) -> String {
    let name = env.container.name.clone();
    std::thread::scope(|s| {
        let container = s.spawn(|| alca_e2e::docker::exec_sh(&name, script).expect("exec"));
        assert!(
            eventually(10 * SECOND, || dir.join("ready").exists()),
            "the container opened its files"
        );
        host();
        std::thread::sleep(SECOND);
        let mut hidden = std::fs::OpenOptions::new()
            .append(true)
            .open(dir.join(".env"))
            .expect("open .env");
        std::io::Write::write_all(&mut hidden, env.tree.marker.as_bytes()).expect("append");
        write(&dir.join("go"), b"").expect("go");
        container.join().expect("container thread")
    })
}

/// Files are opened without open requests where the kernel supports it, so reads and writes
/// go to the host object each inode holds: a descriptor open in the container must keep its
/// file through a host unlink or atomic replace (as on a bind mount), while a file the host
/// moves to an excluded name can no longer be opened, even though the container had it cached.
#[test]
fn open_descriptors_survive_host_unlink_and_replace_and_moved_away_files_cannot_be_reopened() {
    if !ready() {
        return;
    }
    let env = Env::start("held");
    let dir = env.tree.path("o");
    for (name, text) in [
        ("a", "a-old"),
        ("b", "b-old"),
        ("c", ""),
        ("d", "d-visible"),
    ] {
        write(&dir.join(name), text.as_bytes()).expect("write");
    }
    let script = format!(
        "cd /workspace/o && exec 3< a && exec 4< b && exec 5<> c && cat d > /dev/null \
         && {WAIT_FOR_GO} echo \"A:$(cat <&3)\"; echo \"B:$(cat <&4)\"; echo \"B-NOW:$(cat b)\"; \
         echo tail >&5 && echo C-WROTE; echo \"C:$(cat /proc/self/fd/5)\"; cat d .env 2>&1; ls -a"
    );
    let out = while_the_host_changes(&env, &dir, &script, || {
        std::fs::remove_file(dir.join("a")).expect("unlink a");
        write(&dir.join("b.tmp"), b"b-new").expect("write");
        std::fs::rename(dir.join("b.tmp"), dir.join("b")).expect("replace b");
        std::fs::remove_file(dir.join("c")).expect("unlink c");
        std::fs::rename(dir.join("d"), dir.join(".env")).expect("hide d");
    });
    assert!(out.contains("A:a-old"), "unlinked file still read: {out}");
    assert!(out.contains("B:b-old"), "replaced file read as held: {out}");
    assert!(
        out.contains("B-NOW:b-new"),
        "its name shows the new file: {out}"
    );
    assert!(
        out.contains("C-WROTE") && out.contains("C:tail"),
        "unlinked file written: {out}"
    );
    assert!(
        !out.contains(&env.tree.marker),
        "hidden content seen: {out}"
    );
    assert!(!out.contains("d-visible"), "moved file reopened: {out}");
    assert_eq!(
        out.matches("No such file").count(),
        2,
        "d and .env absent: {out}"
    );
    assert!(!listed(&out, "d") && !listed(&out, ".env"), "listed: {out}");
}

/// A descriptor open in the container follows its file through a host rename inside the
/// view (a log rotation under `tail -f`), as on a bind mount, but a file the host moves to an
/// excluded name is never read through it again (issue #18, the no-open lever's regression).
#[test]
fn open_descriptors_follow_host_renames_inside_the_view_but_never_to_an_excluded_name() {
    if !ready() {
        return;
    }
    let env = Env::start("rotate");
    let dir = env.tree.path("o");
    write(&dir.join("app.log"), b"line1\n").expect("write");
    write(&dir.join("e"), b"e-old\n").expect("write");
    // `tail -f` across a log rotation: the fd keeps reading app.log under its new name.
    // `dd` reads with read(2), as tail does; busybox `cat` uses sendfile(2), which the
    // kernel serves up to the size it last knew without asking the view.
    let script = format!(
        "cd /workspace/o && exec 3< app.log && exec 4< e && read -r first <&3 \
         && echo \"FIRST:$first\" && {WAIT_FOR_GO} echo \"LOG:$(dd <&3 2>/dev/null)\"; \
         echo \"NEW:$(cat app.log)\"; echo \"E:$(dd <&4 2>&1)\"; ls -a"
    );
    let out = while_the_host_changes(&env, &dir, &script, || {
        std::fs::rename(dir.join("app.log"), dir.join("app.log.1")).expect("rotate");
        let mut rotated = std::fs::OpenOptions::new()
            .append(true)
            .open(dir.join("app.log.1"))
            .expect("open app.log.1");
        std::io::Write::write_all(&mut rotated, b"rotated\n").expect("append");
        write(&dir.join("app.log"), b"fresh\n").expect("write");
        std::fs::rename(dir.join("e"), dir.join(".env")).expect("hide e");
    });
    assert!(out.contains("FIRST:line1"), "{out}");
    assert!(
        out.contains("LOG:rotated"),
        "the descriptor reads what the host appended after renaming: {out}"
    );
    assert!(
        out.contains("NEW:fresh"),
        "the name shows the new file: {out}"
    );
    assert!(
        !out.contains(&env.tree.marker) && !out.contains("e-old"),
        "a descriptor of a file moved to an excluded name reads nothing: {out}"
    );
    assert!(
        out.contains("E:") && out.contains("No such file"),
        "its read fails: {out}"
    );
    assert!(
        !listed(&out, ".env") && listed(&out, "app.log.1"),
        "listed: {out}"
    );
}

#[test]
fn writes_to_excluded_names_are_refused() {
    if !ready() {
        return;
    }
    let env = Env::start("deny");
    let cases = [
        "echo x > /workspace/.env",
        "echo x > /workspace/app/new.key",
        "mv /workspace/README.md /workspace/.env.prod",
        "mkdir /workspace/secrets",
        "mkdir /workspace/app/node_modules",
        "ln /workspace/README.md /workspace/hard.key",
        "ln -s README.md /workspace/sym.key",
    ];
    for case in cases {
        let out = env.sh(&format!("{case} 2>&1; echo rc=$?"));
        assert!(!out.contains("rc=0"), "`{case}` must fail: {out}");
    }
    env.sh("rm -f /workspace/.env /workspace/id.key; rm -rf /workspace/node_modules");
    let marker = format!("{}\n", env.tree.marker);
    assert_eq!(
        std::fs::read_to_string(env.tree.path(".env")).expect(".env"),
        marker
    );
    assert!(env.tree.path("id.key").exists() && env.tree.path("node_modules/left-pad").exists());
    assert!(env.tree.path("README.md").exists());
    for rel in [
        ".env.prod",
        "secrets",
        "app/new.key",
        "hard.key",
        "sym.key",
        "app/node_modules",
    ] {
        assert!(!env.tree.path(rel).exists(), "{rel} created on the host");
    }
}

#[test]
fn directory_renames_never_reveal_hidden_entries() {
    if !ready() {
        return;
    }
    let mut anchored = patterns();
    anchored.push("/config/prod.toml".into());
    let env = Env::start_with("mvdir", &anchored);
    write(
        &env.tree.path("config/prod.toml"),
        env.tree.marker.as_bytes(),
    )
    .expect("write");
    write(&env.tree.path("config/dev.toml"), b"dev").expect("write");
    let out = env.sh(
        "mv /workspace/config /workspace/cfg 2>&1; cat /workspace/cfg/prod.toml 2>&1; \
                      mv /workspace/.alca /workspace/moved 2>&1; ls -a /workspace/app",
    );
    assert!(
        !out.contains(&env.tree.marker),
        "hidden file revealed by a rename: {out}"
    );
    assert_eq!(
        std::fs::read_to_string(env.tree.path("config/prod.toml")).expect("prod stays"),
        env.tree.marker
    );
    assert!(
        !env.tree.path("cfg/prod.toml").exists(),
        "hidden file moved to a visible path"
    );
    assert!(
        env.tree.path(".alca/views/e2e/view.json").exists(),
        "view state kept"
    );
    assert!(listed(&out, "main.rs"), "the view still serves: {out}");
    // Name-only patterns: a directory rename is a plain rename(2).
    let out = env.sh("mv /workspace/app /workspace/app2 && echo renamed; ls -a /workspace/app2");
    assert!(out.contains("renamed") && !listed(&out, ".env"), "{out}");
    assert!(
        env.tree.path("app2/.env").exists(),
        "hidden file moved along on the host"
    );
}

#[test]
fn build_like_workload_runs_in_the_view() {
    if !ready() {
        return;
    }
    let env = Env::start("build");
    let script = r#"set -e
cd /workspace && mkdir -p build/src build/obj
i=1; while [ $i -le 300 ]; do echo "int f$i(void) { return $i; }" > build/src/f$i.c; i=$((i+1)); done
for f in build/src/*.c; do sed 's/int/long/' "$f" > "build/obj/$(basename "$f" .c).o"; done
cat build/obj/*.o > build/out.bin
printf '#!/bin/sh\necho built $(wc -l < /workspace/build/out.bin)\n' > build/run.sh
chmod 755 build/run.sh && ./build/run.sh
touch -d '2020-01-02 03:04:05' build/out.bin
rm -r build/obj
sha256sum build/out.bin"#;
    let out = env.sh(script);
    assert!(out.contains("built 300"), "script ran from the view: {out}");
    let build = env.tree.path("build");
    let host_sum = sha256(&build.join("out.bin")).expect("sha");
    assert!(out.contains(&host_sum), "same bytes on the host: {out}");
    assert!(!build.join("obj").exists(), "rm -r reached the host");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(build.join("run.sh"))
        .expect("run.sh")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o755);
    let mtime = std::fs::metadata(build.join("out.bin"))
        .expect("out")
        .modified()
        .expect("mtime");
    let secs = mtime
        .duration_since(std::time::UNIX_EPOCH)
        .expect("epoch")
        .as_secs();
    assert_eq!(secs, 1_577_934_245, "utimens passed through");
}

/// Debian's `git` (tests/env/setup.sh copies it and its libraries into the busybox image):
/// init, commit and `git status` on a 2,000-file tree inside the view; the host's git reads the
/// same repository and sees the changes plus the excluded files the container never saw.
#[test]
fn git_status_and_commits_work_in_the_view() {
    if !ready() {
        return;
    }
    let env = Env::start_image("git", &patterns(), GIT_IMAGE);
    let script = r#"set -e
cd /workspace
i=1; while [ $i -le 2000 ]; do d=src/d$((i % 40)); mkdir -p $d; echo "line $i" > $d/f$i.txt; i=$((i+1)); done
git init -q
git add -A
git commit -qm init
echo "== clean"; git status --porcelain
echo changed >> README.md; echo new > src/new.txt; rm src/d1/f1.txt
echo "== dirty"; git status --porcelain
echo "== end""#;
    let out = env.sh(script);
    let section = |name: &str| -> Vec<String> {
        out.split(&format!("== {name}\n"))
            .nth(1)
            .unwrap_or("<missing>")
            .split("== ")
            .next()
            .unwrap_or("")
            .lines()
            .map(str::to_string)
            .collect()
    };
    assert_eq!(section("clean"), Vec::<String>::new(), "{out}");
    assert_eq!(
        section("dirty"),
        [" M README.md", " D src/d1/f1.txt", "?? src/new.txt"],
        "{out}"
    );
    assert!(out.contains("== end"), "{out}");

    let host_git = |args: &[&str]| {
        let root = env.tree.root().to_string_lossy().into_owned();
        let mut all = vec!["-c", "safe.directory=*", "-C", &root];
        all.extend_from_slice(args);
        run("git", &all).expect("host git")
    };
    let tracked = host_git(&["ls-files"]);
    assert_eq!(
        tracked.lines().count(),
        2004,
        "2000 files, README, main.rs, 2 links"
    );
    for hidden in [".env", "secrets", ".key", "node_modules"] {
        assert!(!tracked.contains(hidden), "{hidden} committed: {tracked}");
    }
    // The objects the container wrote through the view form a sound repository.
    host_git(&["fsck", "--no-progress", "--strict"]);
    let host_status = host_git(&["status", "--porcelain"]);
    for line in [
        " M README.md",
        " D src/d1/f1.txt",
        "?? src/new.txt",
        "?? .env",
    ] {
        assert!(
            host_status.lines().any(|l| l == line),
            "host status lacks {line:?}: {host_status}"
        );
    }
}

#[test]
fn dead_server_shows_enotconn_never_the_source_and_up_recovers() {
    if !ready() {
        return;
    }
    let mut env = Env::start("dead");
    let pid = env.handle.pid;
    run("kill", &["-9", &pid.to_string()]).expect("kill server");
    assert!(
        eventually(5 * SECOND, || !process_alive(pid)),
        "server gone"
    );
    // What the kernel still caches of the view (its listings, attributes and pages, all
    // filtered) stays readable after the server died, as it did for file pages already; the
    // raw source (whose root holds `.env`) never shows, and anything uncached is ENOTCONN.
    let out = env.sh("ls -a /workspace 2>&1; cat /workspace/.env 2>&1; echo rc=$?");
    assert!(out.contains("not connected"), "ENOTCONN inside: {out}");
    assert!(
        !listed(&out, ".env") && !out.contains(&env.tree.marker),
        "raw source shown: {out}"
    );
    let state = env.tree.state_dir();
    assert!(matches!(env.engine.status(&state), ViewStatus::Dead { .. }));

    let again = env
        .engine
        .start(env.tree.root(), &patterns(), &state)
        .expect("restart");
    assert!(again.fresh && again.pid != pid);
    env.handle = again;
    docker_ok(&["restart", "-t", "0", &env.container.name]).expect("restart container");
    let ls = env.sh("ls -a /workspace");
    assert!(listed(&ls, "README.md"), "view back: {ls}");
    assert!(!listed(&ls, ".env"), "still filtered: {ls}");
}

#[test]
fn start_is_idempotent_restarts_on_pattern_change_and_stop_cleans_up() {
    if !ready() {
        return;
    }
    let tree = ProjectTree::create("life").expect("tree");
    let engine = FuseEngine::with_program(alca_bin().expect("alca"));
    let state = tree.state_dir();
    let first = engine
        .start(tree.root(), &patterns(), &state)
        .expect("start");
    let same = engine
        .start(tree.root(), &patterns(), &state)
        .expect("again");
    assert_eq!(
        (same.pid, same.fresh),
        (first.pid, false),
        "healthy view reused"
    );
    assert!(matches!(engine.status(&state), ViewStatus::Running { pid, .. } if pid == first.pid));

    let fewer = vec!["**/.env".to_string()];
    let changed = engine
        .start(tree.root(), &fewer, &state)
        .expect("new patterns");
    assert!(changed.fresh && changed.pid != first.pid);
    assert!(!process_alive(first.pid), "old server ended");
    assert!(
        changed.mountpoint.join("id.key").exists(),
        "new patterns apply"
    );
    assert!(!changed.mountpoint.join(".env").exists());

    engine.stop(&state).expect("stop");
    assert_eq!(engine.status(&state), ViewStatus::Stopped);
    assert!(!view_mounted(&changed.mountpoint));
    assert!(eventually(5 * SECOND, || !process_alive(changed.pid)));
    assert_eq!(
        count(&changed.mountpoint),
        0,
        "mountpoint is an empty directory"
    );
    engine.stop(&state).expect("second stop is a no-op");
}

/// git writes its objects into files it creates read-only (`0444`). An unprivileged server
/// cannot reopen such a file for writing, so the descriptor of the create itself must carry
/// the writes (files are opened without open requests, and the kernel sends no release);
/// also once the server holds as many descriptors as its limit allows (then files are read
/// by path).
#[test]
fn files_created_read_only_are_still_written_through_their_create() {
    if !ready() {
        return;
    }
    read_only_creates("rocreate", None, 50);
    // More read-only creates than the whole descriptor limit: their writers are not all
    // kept (the kernel forgets none of these inodes), and the view keeps serving.
    read_only_creates("rocreatelim", Some(1100), 1200);
}

fn read_only_creates(tag: &str, nofile: Option<u32>, count: usize) {
    let tree = ProjectTree::create(tag).expect("tree");
    for i in 0..300 {
        write(
            &tree.path(&format!("many/m.{i}")),
            format!("m{i}\n").as_bytes(),
        )
        .expect("write");
    }
    let state = tree.state_dir();
    std::fs::create_dir_all(state.join("mnt")).expect("state dir");
    let spec = ViewSpec::new(tree.root().to_path_buf(), &patterns(), &state);
    spec.write(&state).expect("spec");
    tree.chown("alcatest").expect("chown");
    let server = UserServer::start_limited("alcatest", &state, nofile);
    let container = start_container(tag, &spec.mountpoint);
    let out = container
        .sh(&format!(
            "cd /workspace && ls -l many > /dev/null && cat many/* | wc -l && umask 0222 \
             && i=0; while [ $i -lt {count} ]; do \
             {{ echo first; echo second; }} > ro.$i || echo FAILED $i; i=$((i+1)); done; \
             cat ro.0 ro.{last}; ls -l ro.0; umask 0022; echo after > after.txt && cat after.txt",
            last = count - 1
        ))
        .expect("exec");
    assert!(!out.contains("FAILED"), "{out}");
    assert!(
        out.lines().next().is_some_and(|l| l.trim() == "300"),
        "{out}"
    );
    assert!(out.contains("-r--r--r--"), "created read-only: {out}");
    assert!(out.trim_end().ends_with("after"), "still serving: {out}");
    for i in [0, count / 2, count - 1] {
        assert_eq!(
            std::fs::read_to_string(tree.path(&format!("ro.{i}"))).expect("on the host"),
            "first\nsecond\n"
        );
    }
    drop(container);
    drop(server);
}

#[test]
fn files_created_in_the_container_belong_to_the_invoking_user() {
    if !ready() {
        return;
    }
    let tree = ProjectTree::create("owner").expect("tree");
    let state = tree.state_dir();
    std::fs::create_dir_all(state.join("mnt")).expect("state dir");
    let spec = ViewSpec::new(tree.root().to_path_buf(), &patterns(), &state);
    spec.write(&state).expect("spec");
    tree.chown("alcatest").expect("chown");
    let server = UserServer::start("alcatest", &state);
    let container = start_container("owner", &spec.mountpoint);
    let out = container
        .sh("echo hi > /workspace/made.txt; mkdir /workspace/made.d; ls -ln /workspace/README.md; cat /workspace/.env 2>&1")
        .expect("exec");
    assert!(!out.contains(&tree.marker), "{out}");
    let uid: u32 = run("id", &["-u", "alcatest"])
        .expect("id")
        .trim()
        .parse()
        .expect("uid");
    use std::os::unix::fs::MetadataExt;
    for rel in ["made.txt", "made.d"] {
        let meta = std::fs::metadata(tree.path(rel)).expect("created on host");
        assert_eq!(meta.uid(), uid, "{rel} owned by the server's user");
    }
    assert!(
        out.contains(&format!(" {uid} ")),
        "host owner shown inside: {out}"
    );
    drop(container);
    drop(server);
}

/// A view server run as another user, unmounted and ended on drop.
struct UserServer {
    child: std::process::Child,
    mountpoint: PathBuf,
}

impl UserServer {
    fn start(user: &str, state: &Path) -> UserServer {
        UserServer::start_limited(user, state, None)
    }

    /// With `nofile`: under that `RLIMIT_NOFILE` (soft and hard).
    fn start_limited(user: &str, state: &Path, nofile: Option<u32>) -> UserServer {
        alca_e2e::netd::fuse_ready_for(user);
        let limit = nofile.map(|n| format!("--nofile={n}:{n}"));
        let mut child = Command::new("runuser")
            .args(["-u", user, "--"])
            .args(limit.iter().flat_map(|l| ["prlimit", l.as_str(), "--"]))
            .arg(alca_bin().expect("alca"))
            .arg("__serve-view")
            .arg(state)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn server");
        let mut line = String::new();
        let stdout = child.stdout.take().expect("stdout");
        std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line).expect("read");
        assert_eq!(
            line.trim(),
            "ready",
            "server as {user} mounted (user_allow_other set?)"
        );
        UserServer {
            child,
            mountpoint: state.join("mnt"),
        }
    }
}

impl Drop for UserServer {
    fn drop(&mut self) {
        let _ = run("umount", &[&self.mountpoint.to_string_lossy()]);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn count(dir: &Path) -> usize {
    std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0)
}

/// The whole lifecycle through the CLI, as an unprivileged user: `up` mounts the view and the
/// container sees it, `status`/`sync` report it, `up` recovers a killed server, `down` stops it.
#[test]
fn alca_up_down_status_and_sync_drive_the_view() {
    use alca_e2e::lifecycle::{Project, Rt, TEST_USER};
    if !ready() {
        return;
    }
    alca_e2e::netd::fuse_ready_for(TEST_USER);
    let body =
        "workdir_exclude = [\"**/.env\", \"**/secrets/\"]\n[network]\nlan-access = [\"*\"]\n";
    let p = Project::new(Rt::Docker, Some(TEST_USER), body);
    let marker = format!("ALCA_LC_SECRET_{}", std::process::id());
    write(&p.path(".env"), marker.as_bytes()).expect("write");
    write(&p.path("sub/secrets/token"), marker.as_bytes()).expect("write");
    write(&p.path("visible.txt"), b"visible").expect("write");
    p.chown_all();
    p.alca("", &["up", "-q"]).expect_code(0, "up");

    let inside = p
        .alca("sub", &["run", "sh", "-c", "ls -a /workspace /workspace/sub; cat /workspace/.env /workspace/sub/secrets/token; echo made > /workspace/made.txt"])
        .all();
    assert!(
        listed(&inside, "visible.txt") && listed(&inside, "deeper"),
        "{inside}"
    );
    assert!(
        !listed(&inside, ".env") && !listed(&inside, "secrets"),
        "{inside}"
    );
    assert!(
        !inside.contains(&marker),
        "secret readable through alca run: {inside}"
    );
    use std::os::unix::fs::MetadataExt;
    let uid: u32 = run("id", &["-u", TEST_USER])
        .expect("id")
        .trim()
        .parse()
        .expect("uid");
    assert_eq!(
        std::fs::metadata(p.path("made.txt")).expect("made").uid(),
        uid
    );

    let status = p.alca("", &["status"]).expect_code(0, "status").all();
    assert!(
        status.contains("File exclusion: 2 pattern(s) configured"),
        "{status}"
    );
    assert!(status.contains("active (filtered view"), "{status}");
    let check = p.alca("", &["experimental", "sync", "check"]);
    assert!(check
        .expect_code(0, "sync check")
        .stdout
        .contains("no conflicts (live filtered view)"));
    let resolve = p.alca("", &["experimental", "sync", "resolve"]);
    assert!(resolve
        .expect_code(0, "sync resolve")
        .stdout
        .contains("nothing to resolve"));

    let views = p.path(".alca/views");
    let state = std::fs::read_dir(&views)
        .expect("views")
        .flatten()
        .next()
        .expect("one view")
        .path();
    let kill_server = || {
        let text = std::fs::read_to_string(state.join("view.pid")).expect("pid file");
        let pid: u32 = text.trim().parse().expect("pid");
        run("kill", &["-9", &pid.to_string()]).expect("kill");
        assert!(eventually(5 * SECOND, || !process_alive(pid)));
    };
    kill_server();
    let status = p.alca("", &["status"]).all();
    assert!(status.contains("broken"), "dead view reported: {status}");
    let after = p.alca("", &["run", "ls", "-a", "/workspace"]).all();
    assert!(
        listed(&after, "visible.txt") && !listed(&after, ".env"),
        "run recovered: {after}"
    );
    kill_server();
    p.alca("", &["up", "-q"]).expect_code(0, "up after a crash");
    let after = p.alca("", &["run", "ls", "-a", "/workspace"]).all();
    assert!(
        listed(&after, "visible.txt") && !listed(&after, ".env"),
        "up recovered: {after}"
    );

    // A reboot: no view mounted, and the runtime restarts the container (restart policy)
    // before anyone runs alca. It sees an empty directory, never the unfiltered source; the
    // next `run` or `up` brings the filtered view back.
    let reboot = || {
        kill_server();
        let mnt = state.join("mnt");
        run("umount", &[&mnt.to_string_lossy()]).expect("unmount the dead view");
        assert!(!view_mounted(&mnt));
        docker_ok(&["restart", "-t", "0", &p.container()]).expect("restart as after a boot");
        let booted = docker_ok(&["exec", &p.container(), "ls", "-a", "/workspace"]).expect("ls");
        assert!(
            !listed(&booted, "visible.txt") && !listed(&booted, ".env"),
            "before alca runs the workspace is empty, not the raw source: {booted}"
        );
    };
    reboot();
    let after = p.alca("", &["run", "ls", "-a", "/workspace"]).all();
    assert!(
        listed(&after, "visible.txt") && !listed(&after, ".env"),
        "run after a reboot serves the filtered view: {after}"
    );
    reboot();
    p.alca("", &["up", "-q"])
        .expect_code(0, "up after a reboot");
    let after = p.alca("", &["run", "ls", "-a", "/workspace"]).all();
    assert!(
        listed(&after, "visible.txt") && !listed(&after, ".env"),
        "up after a reboot serves the filtered view: {after}"
    );

    // New patterns on an existing container: refuse to keep it, rebuild with -f.
    let more = "workdir_exclude = [\"**/.env\", \"**/secrets/\", \"visible.txt\"]\n[network]\nlan-access = [\"*\"]\n";
    p.write_config(more);
    let kept = p.alca("", &["up", "-q"]);
    assert!(
        kept.code != 0 && kept.all().contains("alca up -f"),
        "stale container refused: {}",
        kept.all()
    );
    let inspected = Rt::Docker
        .inspect("container", &p.container())
        .expect("inspect");
    assert_eq!(
        inspected["State"]["Running"], false,
        "refused container stopped"
    );
    p.alca("", &["up", "-f", "-q"])
        .expect_code(0, "rebuild with the new patterns");
    let after = p.alca("", &["run", "ls", "-a", "/workspace"]).all();
    assert!(
        !listed(&after, "visible.txt") && listed(&after, "made.txt"),
        "new pattern applies: {after}"
    );

    p.alca("", &["down"]).expect_code(0, "down");
    assert!(!view_mounted(&state.join("mnt")), "down unmounts the view");
    assert!(
        !state.join("view.pid").exists(),
        "down removes the pid file"
    );
}

/// Rootful Podman bind-mounts the view the same way Docker does.
#[test]
fn podman_containers_see_the_filtered_view() {
    if !ready() {
        return;
    }
    let tree = ProjectTree::create("podman").expect("tree");
    let engine = FuseEngine::with_program(alca_bin().expect("alca"));
    let state = tree.state_dir();
    let handle = engine
        .start(tree.root(), &patterns(), &state)
        .expect("start");
    let volume = format!("{}:/workspace", handle.mountpoint.display());
    let script = "ls -a /workspace /workspace/app; cat /workspace/.env /workspace/app/secrets/db.txt 2>&1; echo from-podman > /workspace/podman.txt";
    let out = Command::new("podman")
        .args(["run", "--rm", "--network", "none", "-v", &volume])
        .args(["localhost/alca-test/busybox:latest", "sh", "-c", script])
        .output()
        .expect("podman run");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    engine.stop(&state).expect("stop");
    assert!(
        listed(&text, "README.md") && listed(&text, "main.rs"),
        "{text}"
    );
    for name in HIDDEN_NAMES {
        assert!(!listed(&text, name), "{name} listed: {text}");
    }
    assert!(
        !text.contains(&tree.marker),
        "secret readable in podman: {text}"
    );
    assert_eq!(
        std::fs::read_to_string(tree.path("podman.txt")).expect("written through the view"),
        "from-podman\n"
    );
}

/// Issue #18's stress test: for a bounded time, 4 writers in the container and 4 on the host
/// create files (write a temporary name, rename it into place), rename finished files, rewrite
/// one file in place and make files of excluded names (the host also renames visible files to
/// excluded names), while 4 readers in the container and 4 on the host check every finished
/// file of the other side and look for excluded names and the secret marker. No reader may see
/// a torn, stale or hidden file; afterwards every file is on the other side with the same
/// checksum, and none is missing.
#[test]
fn parallel_writers_and_readers_on_both_sides_lose_nothing_and_see_nothing_hidden() {
    use alca_e2e::view::{stress_content, stress_content_ok, STRESS_CONTENT_SH};
    use sha2::{Digest, Sha256};
    use std::collections::BTreeMap;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::time::Instant;
    if !ready() {
        return;
    }
    const LOAD: Duration = Duration::from_secs(60);
    let env = Env::start("stress");
    let root = env.tree.root().to_path_buf();
    let marker = env.tree.marker.clone();
    let started = Instant::now();
    // Container writers: c<k>/f.<i> via a temporary name, every 5th renamed to g.<i>, c<k>/m
    // rewritten in place, an excluded name tried (it must be refused).
    let writer = |k: u32| {
        format!(
            "{STRESS_CONTENT_SH}; cd /workspace; mkdir -p c{k}; i=0; \
             while [ ! -e STOP ] && [ $i -lt 100000 ]; do name=c{k}/f.$i; fill c{k}/tmp; \
             mv c{k}/tmp $name; if [ $((i % 5)) = 4 ]; then mv c{k}/f.$((i - 1)) c{k}/g.$((i - 1)); fi; \
             name=c{k}/m; fill c{k}/m; \
             (echo x > c{k}/s.$i.key) 2>/dev/null && echo LEAK-CREATE c{k}/s.$i.key; \
             i=$((i + 1)); done; echo DONE $i"
        )
    };
    // Container readers: every finished file of host writer k whole, no excluded name listed,
    // the marker nowhere but in `h<k>/v.<i>`: the host writes it there, under a visible name,
    // for the moment before it renames the file to the excluded `v.<i>.key` (reading it then
    // is no leak; reading it through any other name is).
    let reader = |k: u32| {
        format!(
            "cd /workspace; r=0; while [ ! -e STOP ] && [ $r -lt 100000 ]; do \
             for f in h{k}/f.*; do [ -e \"$f\" ] || continue; i=${{f##*.}}; \
             c=$(cat \"$f\" 2>/dev/null) || continue; u=$(echo \"$c\" | sort -u); \
             n=$(echo \"$c\" | wc -l); [ \"$u\" = \"$f\" ] && [ $n = $((i % 16 + 1)) ] || echo BAD $f; done; \
             ls -a h{k} c{k} . 2>/dev/null | grep -E '\\.key$|^\\.env|^secrets$' | sed 's/^/LEAK-NAME /'; \
             if [ $((r % 10)) = 0 ]; then grep -rl {marker} . 2>/dev/null | grep -v '/v\\.[0-9]*$' | sed 's/^/LEAK-READ /'; fi; \
             r=$((r + 1)); done; echo DONE $r"
        )
    };
    let spawn = |script: String| {
        Command::new("docker")
            .args(["exec", &env.container.name, "sh", "-c", &script])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("docker exec")
    };
    let inside: Vec<_> = (0..4)
        .map(|k| spawn(writer(k)))
        .chain((0..4).map(|k| spawn(reader(k))))
        .collect();

    let stop = Arc::new(AtomicBool::new(false));
    let mut host = Vec::new();
    for k in 0..4u32 {
        let (w_root, marker, w_stop) = (root.clone(), marker.clone(), Arc::clone(&stop));
        // Host writers: h<k>/f.<i> via a temporary name, every 5th renamed to g.<i>, h<k>/m
        // rewritten in place, secrets written and visible files renamed to excluded names.
        host.push(std::thread::spawn(move || {
            let (root, stop) = (w_root, w_stop);
            let dir = root.join(format!("h{k}"));
            std::fs::create_dir_all(dir.join("secrets")).expect("mkdir");
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let name = format!("h{k}/f.{i}");
                write(&dir.join("tmp"), stress_content(&name, i).as_bytes()).expect("tmp");
                std::fs::rename(dir.join("tmp"), root.join(&name)).expect("rename in");
                if i % 5 == 4 {
                    let from = dir.join(format!("f.{}", i - 1));
                    std::fs::rename(from, dir.join(format!("g.{}", i - 1))).expect("rename");
                }
                write(
                    &dir.join("m"),
                    stress_content(&format!("h{k}/m"), i).as_bytes(),
                )
                .expect("m");
                write(&dir.join(format!("v.{i}")), marker.as_bytes()).expect("v");
                std::fs::rename(dir.join(format!("v.{i}")), dir.join(format!("v.{i}.key")))
                    .expect("rename to an excluded name");
                write(&dir.join(".env"), marker.as_bytes()).expect(".env");
                write(&dir.join(format!("secrets/s.{}", i % 7)), marker.as_bytes()).expect("s");
                i += 1;
            }
            format!("DONE {i}")
        }));
        // Host readers: every finished file of container writer k whole.
        let (root, stop) = (root.clone(), Arc::clone(&stop));
        host.push(std::thread::spawn(move || {
            let mut bad = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let Ok(entries) = std::fs::read_dir(root.join(format!("c{k}"))) else {
                    std::thread::sleep(Duration::from_millis(20));
                    continue;
                };
                for entry in entries.flatten() {
                    let file = entry.file_name().to_string_lossy().into_owned();
                    if !file.starts_with("f.") {
                        continue;
                    }
                    let name = format!("c{k}/{file}");
                    if let Ok(text) = std::fs::read_to_string(entry.path()) {
                        if !stress_content_ok(&name, &text) {
                            bad.push(format!("BAD {name}"));
                        }
                    }
                }
            }
            bad.join("\n")
        }));
    }
    std::thread::sleep(LOAD);
    stop.store(true, Ordering::Relaxed);
    let host_out: Vec<String> = host
        .into_iter()
        .map(|t| t.join().expect("host thread"))
        .collect();
    write(&root.join("STOP"), b"").expect("stop");
    let inside_out: Vec<String> = inside
        .into_iter()
        .map(|c| {
            let out = c.wait_with_output().expect("docker exec");
            String::from_utf8_lossy(&out.stdout).into_owned()
        })
        .collect();
    let all = format!("{}\n{}", host_out.join("\n"), inside_out.join("\n"));
    for bad in ["BAD", "LEAK"] {
        assert!(!all.contains(bad), "{bad} seen under load:\n{all}");
    }
    let done = |out: &str| -> u64 {
        out.lines()
            .find_map(|l| l.strip_prefix("DONE "))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or_else(|| panic!("no DONE line in {out}"))
    };
    // Every file each side finished is on the other side, whole, under its final name.
    for k in 0..4u32 {
        let last = done(&inside_out[k as usize]);
        assert!(last > 10, "container writer {k} made only {last} files");
        for i in 0..last {
            let renamed = i % 5 == 3 && i + 1 < last;
            let final_name = format!("c{k}/{}.{i}", if renamed { "g" } else { "f" });
            let text = std::fs::read_to_string(root.join(&final_name))
                .unwrap_or_else(|e| panic!("{final_name} lost on the host: {e}"));
            assert_eq!(
                text,
                stress_content(&format!("c{k}/f.{i}"), i),
                "{final_name}"
            );
        }
        assert_eq!(
            std::fs::read_to_string(root.join(format!("c{k}/m"))).expect("c/m"),
            stress_content(&format!("c{k}/m"), last - 1)
        );
    }
    // The container's checksums of every host-side file equal the host's (nothing stale,
    // nothing missing), and no excluded name is among them.
    let listing = env
        .sh("cd /workspace && sleep 1 && find h0 h1 h2 h3 c0 c1 c2 c3 -type f | xargs sha256sum");
    let seen: BTreeMap<&str, &str> = listing
        .lines()
        .filter_map(|l| l.split_once("  ").map(|(sum, path)| (path, sum)))
        .collect();
    let mut expected = BTreeMap::new();
    for dir in ["h0", "h1", "h2", "h3", "c0", "c1", "c2", "c3"] {
        for entry in std::fs::read_dir(root.join(dir)).expect("dir").flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if entry.path().is_file() && !name.ends_with(".key") && name != ".env" {
                let bytes = std::fs::read(entry.path()).expect("read");
                let sum: String = Sha256::digest(&bytes)
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect();
                expected.insert(format!("{dir}/{name}"), sum);
            }
        }
    }
    let expected: BTreeMap<&str, &str> = expected
        .iter()
        .map(|(p, s)| (p.as_str(), s.as_str()))
        .collect();
    assert!(expected.len() > 100, "{} files", expected.len());
    for (path, sum) in &expected {
        assert_eq!(
            seen.get(path),
            Some(sum),
            "{path}: container and host disagree"
        );
    }
    assert_eq!(seen.len(), expected.len(), "the container sees other files");
    // Bounded by LOAD and each loop's own count, not asserted on the clock: how long the
    // checks take on a loaded machine is a benchmark's business (bench/exclude.sh).
    eprintln!("stress test took {:?}", started.elapsed());
}
