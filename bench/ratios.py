"""Prints the edge pure-path benchmark as ratios to its floor (bare HMAC-SHA256).

Reads criterion's estimates from target/criterion/edge_pure_path (written by
`cargo bench -p sluice-protocol --bench ingest`, run by `make bench`)."""
import json
import pathlib
import sys

root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "target/criterion/edge_pure_path")


def median_ns(name: str, size: str) -> float:
    path = root / name / size / "new" / "estimates.json"
    return json.loads(path.read_text())["median"]["point_estimate"]


def optional_median_ns(name: str, size: str):
    path = root / name / size / "new" / "estimates.json"
    return median_ns(name, size) if path.exists() else None


# The signature check alone (no envelope): how low the pure path could go.
BOUNDS = ["verify_borrowed", "verify_owned"]

print(f"{'body':>10} {'floor (HMAC)':>14} {'pure path':>12} {'ratio':>7}  target <= 1.30")
bounds = []
for size in sorted((p.name for p in (root / "prepare").iterdir() if p.name.isdigit()), key=int):
    floor = median_ns("floor_hmac_sha256", size)
    path = median_ns("prepare", size)
    print(f"{int(size):>10} {floor / 1000:>11.1f} us {path / 1000:>9.1f} us {path / floor:>6.2f}x")
    found = [optional_median_ns(name, size) for name in BOUNDS]
    if all(found):
        bounds.append(f"{int(size):>10} " + " ".join(f"{t / 1000:>9.2f} us {t / floor:>5.2f}x" for t in found))
if bounds:
    print("lower bounds, verification alone (no envelope), as a ratio to the same floor:")
    print(f"{'body':>10} {'borrowed request':>19} {'owned parts freed':>19}")
    print("\n".join(bounds))
