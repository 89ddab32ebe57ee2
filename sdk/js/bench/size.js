// `npm run size`: the gzipped bundles of @sluice/sdk and @growthbook/growthbook,
// built the same way, without the timings of `npm run bench`.
import { bundleRatio, reportBundles } from "./bundle.js";

const bundles = await reportBundles();
const { ratio, met } = bundleRatio(bundles);
console.log(`ratio: ${ratio.toFixed(3)} of GrowthBook's (${bundles.ours.gzipped} / ${bundles.theirs.gzipped} B); target <= 1/3 ${met ? "met" : "MISSED"}`);
