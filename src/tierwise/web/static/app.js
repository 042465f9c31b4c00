// Progressive enhancement only: every page works without it.
document.addEventListener("submit", (event) => {
  const button = event.submitter;
  if (button && button.value === "apply" && !confirm(document.documentElement.lang.startsWith("zh")
      ? "保存并应用此策略？下一次分级运行将使用它。" : "Save and apply this policy? The next run uses it.")) {
    event.preventDefault();
  }
});
