import EdgeLogStorage
print("edgelog")
