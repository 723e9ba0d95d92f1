{
  description = "Boots NanoPi R2S NixOS images under QEMU (or on a real board) and judges them by scenario files";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";

  outputs = { self, nixpkgs }:
    let
      inherit (nixpkgs) lib;
      systems = [ "x86_64-linux" "aarch64-linux" ];
      forAllSystems = f: lib.genAttrs systems (system: f system nixpkgs.legacyPackages.${system});

      # nixpkgs builds ubootQemuAarch64 for aarch64 hosts only; elsewhere it is cross-compiled.
      ubootFor = pkgs:
        if pkgs.stdenv.hostPlatform.isAarch64
        then pkgs.ubootQemuAarch64
        else pkgs.pkgsCross.aarch64-multiplatform.ubootQemuAarch64;

      harnessFor = pkgs:
        pkgs.rustPlatform.buildRustPackage {
          pname = "r2s-harness";
          version = (lib.importTOML ./harness/Cargo.toml).package.version;
          src = lib.fileset.toSource {
            root = ./.;
            fileset = lib.fileset.unions [
              ./Cargo.toml
              ./Cargo.lock
              ./harness
              ./images
              ./tests
              # Embedded in the binary at build time (harness/build.rs).
              ./scenarios
            ];
          };
          cargoLock.lockFile = ./Cargo.lock;
          cargoBuildFlags = [ "--package" "r2s-harness" "--bin" "harness" ];
          # The tests boot QEMU and build their fixture images with apt: they run in the
          # project's own CI, not in this build.
          doCheck = false;
          nativeBuildInputs = [ pkgs.makeWrapper ];
          postInstall = ''
            wrapProgram $out/bin/harness \
              --prefix PATH : ${lib.makeBinPath [ pkgs.qemu pkgs.e2fsprogs ]} \
              --set-default R2S_FIRMWARE ${ubootFor pkgs}/u-boot.bin
          '';
          meta = {
            description = "Boots NanoPi R2S NixOS images under QEMU and judges the serial console by scenario files";
            license = with lib.licenses; [ mit asl20 ];
            mainProgram = "harness";
            platforms = lib.platforms.linux;
          };
        };

      # A derivation that boots `image` under QEMU in the build sandbox and runs `scenarios` on
      # it (default: the health check written from the image, then the shipped scenarios).
      # `image` is a .img or .img.zst file, or a directory holding sd-image/*.img* (an
      # sdImage derivation). $out gets the transcripts, junit.xml and report.html; the build
      # fails when a scenario fails or cannot run, and Nix then keeps no $out. With
      # `failOnFail = false` the build succeeds whatever the verdict, so that the reports
      # survive, and $out/failed holds the harness's exit code when it was not 0 (as nixpkgs'
      # testers keep a failing build's log): a CI job reads it and fails after uploading them.
      bootCheckFor = pkgs: harness:
        { name
        , image
        , scenarios ? [ ]
        , board ? null
        , extraArgs ? [ ]
          # Environment for the scenarios, e.g. { R2S_PASSWORD = "…"; } for a login. It is
          # written into the derivation, which every user of the machine can read: a password
          # here is a test-only one.
        , env ? { }
        , failOnFail ? true
        }:
        let
          options = lib.optionals (board != null) [ "--board" board ] ++ extraArgs;
          # As store paths: "${file}" copies a local file into the store, where the build can
          # read it (toString would give its path outside the sandbox).
          scenarioFiles = map (file: "${file}") scenarios;
        in
        pkgs.runCommand "boot-check-${name}"
          ({
            nativeBuildInputs = [ harness ];
          } // env)
          ''
            img=${image}
            if [ -d "$img" ]; then
              for candidate in "$img"/sd-image/*.img*; do
                img=$candidate
                break
              done
            fi
            if [ ! -f "$img" ]; then
              echo "boot check ${name}: no image in ${image} (expected a .img, a .img.zst or sd-image/*.img*)" >&2
              exit 1
            fi
            mkdir -p "$out"
            set -- ${lib.escapeShellArgs (options ++ scenarioFiles)}
            status=0
            # bootCheck command (tests/flake.rs and tests/sandbox.rs run this script as it is):
            harness run --image "$img" --transcripts "$out/transcripts" --junit "$out/junit.xml" --html "$out/report.html" "$@" || status=$?
            if [ "$status" -ne 0 ]; then
              ${if failOnFail then ''
                exit "$status"
              '' else ''
                echo "$status" > "$out/failed"
                echo "boot check ${name}: harness exited with $status; reports kept in $out (failOnFail = false)" >&2
              ''}
            fi
          '';
    in
    {
      packages = forAllSystems (system: pkgs: rec {
        harness = harnessFor pkgs;
        default = harness;
      });

      apps = forAllSystems (system: pkgs: {
        default = {
          type = "app";
          program = lib.getExe self.packages.${system}.default;
        };
      });

      lib = forAllSystems (system: pkgs: {
        bootCheck = bootCheckFor pkgs self.packages.${system}.default;
      });
    };
}
